// Host test of the Hopper kernel's pipeline protocol (csrc/cuda/hopper/layout.h PipelineState and the
// waits/arrivals of attention_hopper.cuh): a model of mbarrier phases and TMA transactions, with the
// producer and consumer written as the kernel's loops and run under random interleavings. Checks:
// no deadlock, every tile the consumer reads is the one it expects and freshly loaded, no load
// lands in a slot whose previous tile was not consumed. Lists of 0, 1, stages, stages + 1 and 300
// kept blocks, and mixes of them. The producer issues a row's first tilesBeforeQ(count, stages)
// K/V tiles before waiting for the Q slot, as the kernel does; issuing one more deadlocks, and the
// model must say so.
#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "../../csrc/cuda/hopper/layout.h"
#include "check.h"

using nabla::cuda::hopper::PipelineState;
using nabla::cuda::hopper::tilesBeforeQ;

namespace {

// mbarrier: a phase completes when all arrivals of the phase came and all expected bytes landed.
struct Barrier {
  int arrivals = 1, pending = 1;
  long long bytes = 0;
  int completed = 0;
  explicit Barrier(int count = 1) : arrivals(count), pending(count) {}
  void settle() {
    if (pending == 0 && bytes == 0) {
      ++completed;
      pending = arrivals;
    }
  }
  void arrive() {
    --pending;
    settle();
  }
  void arriveExpect(long long b) {
    bytes += b;
    --pending;
    settle();
  }
  void land(long long b) {
    bytes -= b;
    settle();
  }
  // try_wait.parity(P): true once the phase of parity P completed, i.e. the current phase differs
  bool tryWait(uint32_t parity) const { return uint32_t(completed & 1) != parity; }
};

// A shared-memory slot: which tile it holds and whether the consumer is done with it.
struct Slot {
  long long tile = -1;
  bool consumed = true;
};

long long tileId(int row, int n, int kind) {
  return (static_cast<long long>(row) * 1000 + n) * 4 + kind;
}  // kind 0 Q, 1 K, 2 V

struct Load {
  Slot* slot;
  long long tile;
  Barrier* barrier;
};

struct Model {
  int stages;
  int extraAhead;           // tiles issued before Q beyond the kernel's rule (0; 1 to show the deadlock)
  std::vector<int> counts;  // kept blocks of each row, taken in this order
  Barrier qFull{1}, qEmpty{128};
  std::vector<Barrier> kFull, kEmpty, vFull, vEmpty;
  Slot q;
  std::vector<Slot> k, v;
  int rowSlot = -2;
  std::vector<Load> inFlight;
  std::string error;

  // producer: the kernel's loop, one action per step
  struct {
    int pc = 0, ticket = 0, row = 0, count = 0, n = 0, ahead = 0;
    PipelineState q, kv;
    bool done = false;
  } pr;
  // consumer
  struct {
    int pc = 0, row = 0, count = 0, n = 0, rowsDone = 0;
    PipelineState q, kv;
    bool done = false;
  } co;

  Model(int s, std::vector<int> c, int extra = 0)
      : stages(s),
        extraAhead(extra),
        counts(std::move(c)),
        kFull(s, Barrier(1)),
        kEmpty(s, Barrier(128)),
        vFull(s, Barrier(1)),
        vEmpty(s, Barrier(128)),
        k(s),
        v(s) {}

  void issue(Slot& slot, long long tile, Barrier& full) {
    if (!slot.consumed) error = "a load overwrites a tile the consumer has not consumed";
    full.arriveExpect(1);  // one "byte" per tile is enough for the model
    inFlight.push_back({&slot, tile, &full});
  }
  void arrive128(Barrier& b) {
    for (int i = 0; i < 128; ++i) b.arrive();
  }
  void read(Slot& slot, long long tile) {
    if (slot.tile != tile || slot.consumed) error = "the consumer read a wrong or stale tile";
  }

  // returns false when blocked
  bool producerStep() {
    auto& p = pr;
    if (p.done) return false;
    switch (p.pc) {
      case 0:  // take a ticket
        p.row = p.ticket < int(counts.size()) ? p.ticket : -1;
        ++p.ticket;
        p.count = p.row < 0 ? 0 : counts[p.row];
        p.ahead = std::min(p.count, tilesBeforeQ(p.count, stages) + extraAhead);
        p.n = 0;
        p.pc = 3;
        return true;
      case 3:  // the row's first tiles, before its Q slot is free
        if (p.n == p.ahead) {
          p.pc = 5;
          return true;
        }
        if (!kEmpty[p.kv.stage].tryWait(p.kv.emptyParity())) return false;
        issue(k[p.kv.stage], tileId(p.row, p.n, 1), kFull[p.kv.stage]);
        p.pc = 4;
        return true;
      case 4:
        if (!vEmpty[p.kv.stage].tryWait(p.kv.emptyParity())) return false;
        issue(v[p.kv.stage], tileId(p.row, p.n, 2), vFull[p.kv.stage]);
        p.kv.advance(stages);
        ++p.n;
        p.pc = 3;
        return true;
      case 5: {  // wait for the Q slot, hand the row over, load Q
        if (!qEmpty.tryWait(p.q.emptyParity())) return false;
        rowSlot = p.row;
        if (p.count == 0) qFull.arrive();
        else issue(q, tileId(p.row, 0, 0), qFull);
        p.q.advance(1);
        if (p.row < 0) {
          p.done = true;
          return true;
        }
        p.pc = 1;
        return true;
      }
      case 1:  // K of block n
        if (p.n == p.count) {
          p.pc = 0;
          return true;
        }
        if (!kEmpty[p.kv.stage].tryWait(p.kv.emptyParity())) return false;
        issue(k[p.kv.stage], tileId(p.row, p.n, 1), kFull[p.kv.stage]);
        p.pc = 2;
        return true;
      case 2:  // V of block n
        if (!vEmpty[p.kv.stage].tryWait(p.kv.emptyParity())) return false;
        issue(v[p.kv.stage], tileId(p.row, p.n, 2), vFull[p.kv.stage]);
        p.kv.advance(stages);
        ++p.n;
        p.pc = 1;
        return true;
    }
    return false;
  }

  bool consumerStep() {
    auto& c = co;
    if (c.done) return false;
    switch (c.pc) {
      case 0: {
        if (!qFull.tryWait(c.q.fullParity())) return false;
        c.row = rowSlot;
        if (c.row < 0) {
          if (c.rowsDone != int(counts.size())) error = "rows missing at the end";
          c.done = true;
          return true;
        }
        if (c.row != c.rowsDone) error = "rows out of order";
        c.count = counts[c.row];
        if (c.count == 0) {  // zeros; Q not loaded
          arrive128(qEmpty);
          c.q.advance(1);
          ++c.rowsDone;
          return true;
        }
        read(q, tileId(c.row, 0, 0));
        c.n = 0;
        c.pc = 1;
        return true;
      }
      case 1:                  // S = Q K^T, release K
        if (c.n == c.count) {  // epilogue: O staged in the Q slot, then released
          q.consumed = true;
          arrive128(qEmpty);
          c.q.advance(1);
          ++c.rowsDone;
          c.pc = 0;
          return true;
        }
        if (!kFull[c.kv.stage].tryWait(c.kv.fullParity())) return false;
        read(k[c.kv.stage], tileId(c.row, c.n, 1));
        k[c.kv.stage].consumed = true;
        arrive128(kEmpty[c.kv.stage]);
        c.pc = 2;
        return true;
      case 2:  // O += P V, release V
        if (!vFull[c.kv.stage].tryWait(c.kv.fullParity())) return false;
        read(v[c.kv.stage], tileId(c.row, c.n, 2));
        v[c.kv.stage].consumed = true;
        arrive128(vEmpty[c.kv.stage]);
        c.kv.advance(stages);
        ++c.n;
        c.pc = 1;
        return true;
    }
    return false;
  }

  bool landStep(std::mt19937& random) {
    if (inFlight.empty()) return false;
    const size_t i = random() % inFlight.size();  // TMA copies may complete in any order
    Load load = inFlight[i];
    inFlight.erase(inFlight.begin() + long(i));
    load.slot->tile = load.tile;
    load.slot->consumed = false;
    load.barrier->land(1);
    return true;
  }

  // Runs to the end under a random interleaving; returns the error ("" when fine).
  std::string run(unsigned seed) {
    std::mt19937 random(seed);
    for (long long step = 0; step < 10000000; ++step) {
      if (!error.empty()) return error;
      if (pr.done && co.done) return inFlight.empty() ? "" : "loads still in flight at the end";
      bool moved = false;
      const int first = int(random() % 3);
      for (int a = 0; a < 3 && !moved; ++a) {
        const int actor = (first + a) % 3;
        moved = actor == 0 ? producerStep() : actor == 1 ? consumerStep() : landStep(random);
      }
      if (!moved) return "deadlock";
    }
    return "did not finish";
  }
};

}  // namespace

int main() {
  for (int stages : {1, 2, 3, 4}) {
    const int s = stages;
    const std::vector<std::vector<int>> lists = {
        {}, {0}, {1}, {s}, {s + 1}, {300}, {0, 1, s, s + 1, 300}, {300, 0, 0, s + 1, 1, s, 2}, {1, 1, 1, 1, 1}};
    for (const auto& counts : lists)
      for (unsigned seed = 0; seed < 12; ++seed) {
        Model model(stages, counts);
        const std::string error = model.run(seed * 7919u + unsigned(stages));
        CHECK(error.empty(), "stages %d, %zu rows (first count %d), seed %u: %s", stages, counts.size(),
              counts.empty() ? -1 : counts[0], seed, error.c_str());
      }
  }
  // one tile more before Q than tilesBeforeQ allows: tile `stages` of a row waits for the slot of
  // the row's tile 0, which the consumer frees only after the row's Q, not issued yet
  for (int stages : {1, 2, 3, 4})
    for (const std::vector<int>& counts : {std::vector<int>{stages + 1}, std::vector<int>{1, 0, 300}})
      for (unsigned seed = 0; seed < 4; ++seed) {
        Model model(stages, counts, 1);
        const std::string error = model.run(seed);
        CHECK(error == "deadlock",
              "stages %d, one tile too many before Q (first count %d), seed %u: got '%s', want a deadlock", stages,
              counts[0], seed, error.c_str());
      }
  // PipelineState: tile n sits in stage n % stages, round n / stages
  for (int stages : {1, 2, 3, 4}) {
    PipelineState state;
    for (int n = 0; n < 300; ++n) {
      CHECK(state.stage == n % stages && state.phase == uint32_t((n / stages) & 1), "tile %d of %d stages", n, stages);
      state.advance(stages);
    }
  }
  return finish("hopper_pipeline");
}
