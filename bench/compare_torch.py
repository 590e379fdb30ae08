#!/usr/bin/env python3
"""Ours vs PyTorch on the same GPU, the same inputs and the same NABLA masks.

Reads what `node bench/gpu-check.js --out DIR` wrote: DIR/meta.json (shapes, our timings, file
names) and the .npy files (q/k/v of the small shape as bf16 values widened to float32, our dense
uint8 block masks [B, H, S/64, S/64] for every shape and threshold, our output at thr 0.7). For
shapes without q/k/v files (the 720p preset) it times PyTorch on random bf16 inputs of the same
shape: timing does not depend on the values, and the mask is ours either way.

Times, with CUDA events (warm-up, then median):
  * torch.nn.functional.scaled_dot_product_attention, dense, bf16 (PyTorch's own backend choice);
  * torch.nn.attention.flex_attention.flex_attention under torch.compile, with
    BlockMask.from_kv_blocks(..., BLOCK_SIZE=64) built from our mask: kv_num_blocks = mask.sum(-1)
    int32, kv_indices = stable descending argsort of the mask, int32 (the package's layout). By
    default the kept blocks are passed as *full* blocks, as the NABLA reference code does
    (from_kv_blocks(zeros, idx, counts, idx, mask_mod=None)); --layout partial passes them as
    kv_num_blocks/kv_indices with the default no-op mask_mod, --layout both times both.
The first flex call per shape is reported separately as compile time.

Correctness: flex_attention against SDPA with the equivalent boolean attn_mask on a small case,
and our output (.npy from gpu-check) against flex's on the same mask.

Our times come from gpu-check (process.hrtime around a synchronous call: output allocation,
launch and stream sync included), PyTorch's from CUDA events (GPU time only): the comparison
leans in PyTorch's favour by the host overhead, which matters only for sub-millisecond runs.

Exit status: 0 when the correctness checks pass or when PyTorch/CUDA is unavailable (with a
message), 1 when a check fails or gpu-check's output is missing.

  python3 bench/compare_torch.py --dir OUT/gpu-check [--data DIR] [--iters 10] [--warmup 3]
                                 [--layout full|partial|both] [--shapes small,wan2.1-14b-720p]
"""
import argparse
import json
import math
import os
import sys
import time


def parse_args():
    ap = argparse.ArgumentParser(
        description='Time PyTorch SDPA and FlexAttention on the inputs and NABLA masks that '
                    'bench/gpu-check.js --out DIR exported, and compare with our timings.',
        epilog='Needs Python 3, numpy and torch (flex_attention needs torch >= 2.5); without torch '
               'or a CUDA device it prints why and exits 0.')
    ap.add_argument('--dir', default='gpu-check-out', help="gpu-check's --out directory (meta.json)")
    ap.add_argument('--data', default=None, help="directory of the .npy files (default: meta.json's dataDir, then --dir)")
    ap.add_argument('--iters', type=int, default=10, help='timed iterations (median reported)')
    ap.add_argument('--warmup', type=int, default=3, help='untimed iterations after the compile call')
    ap.add_argument('--layout', choices=['full', 'partial', 'both'], default='full',
                    help='pass kept blocks to flex as full blocks (NABLA reference) or partial blocks')
    ap.add_argument('--shapes', default=None, help='comma-separated shape names from meta.json (default: all)')
    ap.add_argument('--no-flex', action='store_true', help='skip FlexAttention')
    ap.add_argument('--md', default=None, help='write the tables here (default: DIR/compare_torch.md)')
    return ap.parse_args()


def fmt(x, digits=4):
    if x is None:
        return ''
    if isinstance(x, str):
        return x
    if isinstance(x, int):
        return str(x)
    if x != x or x in (float('inf'), float('-inf')):
        return str(x)
    if x == 0:
        return '0'
    if 1e-3 <= abs(x) < 1e5:
        return f'{x:.{digits}g}'
    return f'{x:.{digits - 1}e}'


def markdown_table(rows):
    if not rows:
        return ''
    cols = list(rows[0].keys())
    lines = ['| ' + ' | '.join(cols) + ' |', '|' + '|'.join('---' for _ in cols) + '|']
    for r in rows:
        lines.append('| ' + ' | '.join(fmt(r.get(c)) for c in cols) + ' |')
    return '\n'.join(lines)


def main():
    args = parse_args()
    try:
        import numpy as np
    except ImportError:
        print('compare_torch: numpy is not installed; nothing to compare (install numpy and torch).')
        return 0
    try:
        import torch
    except ImportError:
        print('compare_torch: PyTorch is not installed here; nothing to compare. '
              'Run it on the GPU machine (bench/gpu-run.sh) or install torch with CUDA.')
        return 0
    if not torch.cuda.is_available():
        print(f'compare_torch: torch {torch.__version__} sees no CUDA device; nothing to compare.')
        return 0

    meta_path = os.path.join(args.dir, 'meta.json')
    if not os.path.exists(meta_path):
        print(f'compare_torch: {meta_path} not found: run `node bench/gpu-check.js --out {args.dir}` first.')
        return 1
    with open(meta_path) as f:
        meta = json.load(f)
    data_dir = args.data or (meta.get('dataDir') if meta.get('dataDir') and os.path.isdir(meta['dataDir']) else args.dir)

    out_lines = []

    def say(text=''):
        print(text, flush=True)
        out_lines.append(text)

    F = torch.nn.functional
    sdpa = getattr(F, 'scaled_dot_product_attention', None)
    notes = []
    if sdpa is None:
        notes.append(f'torch {torch.__version__} has no scaled_dot_product_attention (needs >= 2.0): SDPA rows skipped')
    flex_attention = BlockMask = None
    if not args.no_flex:
        try:
            from torch.nn.attention.flex_attention import flex_attention, BlockMask  # noqa: F401
        except Exception as e:  # old torch
            notes.append(f'torch {torch.__version__} has no flex_attention ({type(e).__name__}: {e}; needs >= 2.5): '
                         'FlexAttention rows skipped')
            flex_attention = BlockMask = None
    compiled = {}

    dev = torch.device('cuda')
    props = torch.cuda.get_device_properties(dev)
    say('# compare_torch: ours vs PyTorch SDPA vs FlexAttention')
    say()
    if meta.get('selfTest'):
        say('**NOTE: meta.json comes from a gpu-check CPU self-test: "ours" numbers are CPU numbers.**')
        say()
    say(f'- device: {props.name} (cc {props.major}.{props.minor}, {props.total_memory / 2**30:.1f} GiB); '
        f'torch {torch.__version__}, CUDA {torch.version.cuda}, triton {_triton_version()}')
    say(f'- ours: gpu-check {meta.get("version")} at git {meta.get("git")} on {meta.get("device")}, {meta.get("date")}')
    say(f'- timing: CUDA events, warm-up {args.warmup}, median of {args.iters}; flex layout: {args.layout}')
    for n in notes:
        say(f'- note: {n}')
    say()

    def cuda_time(fn):
        for _ in range(args.warmup):
            fn()
        torch.cuda.synchronize()
        times = []
        for _ in range(args.iters):
            s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            s.record()
            fn()
            e.record()
            e.synchronize()
            times.append(s.elapsed_time(e))
        times.sort()
        return times[len(times) // 2], times[0], times[-1]

    def block_mask(mask_u8, layout):
        """Our dense uint8 block mask [B, H, nq, nk] (a CUDA tensor) as a flex BlockMask."""
        m = mask_u8.to(torch.int32)
        counts = m.sum(-1, dtype=torch.int32)
        indices = torch.argsort(m, dim=-1, descending=True, stable=True).to(torch.int32)
        if layout == 'full':
            return BlockMask.from_kv_blocks(torch.zeros_like(counts), indices, counts, indices, BLOCK_SIZE=64, mask_mod=None)
        return BlockMask.from_kv_blocks(counts, indices, BLOCK_SIZE=64)

    kernel_options = {}

    def flex_call(q, k, v, bm, scale):
        """Compiled flex; if the default tile config refuses 64-token blocks, retry with 64x64 tiles."""
        key = 'flex'
        if key not in compiled:
            compiled[key] = torch.compile(flex_attention, dynamic=False)
        fn = compiled[key]
        try:
            return fn(q, k, v, block_mask=bm, scale=scale, kernel_options=kernel_options or None)
        except Exception as e:
            if kernel_options:
                raise
            notes.append(f'flex default config failed ({type(e).__name__}: {str(e).splitlines()[0][:160]}); '
                         'retried with kernel_options BLOCK_M=BLOCK_N=64')
            kernel_options.update({'BLOCK_M': 64, 'BLOCK_N': 64})
            return fn(q, k, v, block_mask=bm, scale=scale, kernel_options=kernel_options)

    failures = []
    check_rows = []

    # --- correctness: flex vs SDPA with the equivalent boolean mask (small case) -------------------
    if flex_attention is not None and sdpa is not None:
        try:
            g = torch.Generator(device='cpu').manual_seed(0)
            B, H, S, D = 1, 2, 1024, 64
            nb = S // 64
            q, k, v = (torch.randn(B, H, S, D, generator=g).to(dev, torch.bfloat16) for _ in range(3))
            mask = (torch.rand(B, H, nb, nb, generator=g) < 0.4)
            mask[..., torch.arange(nb), torch.arange(nb)] = True  # every row keeps a block
            mask = mask.to(dev)
            dense_bool = mask.repeat_interleave(64, dim=2).repeat_interleave(64, dim=3)
            ref = sdpa(q.float(), k.float(), v.float(), attn_mask=dense_bool)
            for layout in (['full', 'partial'] if args.layout == 'both' else [args.layout]):
                got = flex_call(q, k, v, block_mask(mask.to(torch.uint8), layout), 1 / math.sqrt(D)).float()
                nmse = ((got - ref) ** 2).sum().item() / (ref ** 2).sum().item()
                ok = nmse <= 5e-4
                check_rows.append({'check': f'flex ({layout}) vs SDPA fp32 + bool attn_mask', 'shape': f'B{B} H{H} S{S} D{D} bf16',
                                   'density': mask.float().mean().item(), 'nMSE': nmse,
                                   'max abs': (got - ref).abs().max().item(), 'result': 'PASS' if ok else 'FAIL'})
                if not ok:
                    failures.append(check_rows[-1]['check'])
        except Exception as e:
            check_rows.append({'check': 'flex vs SDPA', 'shape': '', 'density': '', 'nMSE': '', 'max abs': '',
                               'result': f'FAIL ({type(e).__name__}: {str(e).splitlines()[0][:160]})'})
            failures.append('flex vs SDPA')

    # --- timings ---------------------------------------------------------------------------------------
    wanted = set(args.shapes.split(',')) if args.shapes else None
    rows, compile_rows = [], []
    for shape in meta.get('shapes', []):
        name = shape['name']
        if wanted is not None and name not in wanted:
            continue
        B, H, S, D = shape['B'], shape['H'], shape['S'], shape['D']
        scale = shape.get('scale', 1 / math.sqrt(D))
        dims = f'B{B} H{H} S{S} D{D} bf16'
        # dense FLOPs as gpu-check counted them (lib/flops.ts); meta.json files of older runs lack them: self
        # attention with Dv = D there, so 2*(D+Dv) = 4*D
        flops = shape.get('denseFlops', 4 * B * H * S * S * D)
        files = shape.get('files')
        try:
            if files:
                q, k, v = (torch.from_numpy(np.load(os.path.join(data_dir, files[x]))).to(dev, torch.bfloat16) for x in 'qkv')
                inputs = "gpu-check's"
            else:
                g = torch.Generator(device=dev).manual_seed(1)
                q, k, v = (torch.randn(B, H, S, D, device=dev, dtype=torch.bfloat16, generator=g) for _ in range(3))
                inputs = 'random (timing only)'
        except Exception as e:
            say(f'compare_torch: {name}: cannot load inputs ({type(e).__name__}: {e}); skipped')
            failures.append(f'{name} inputs')
            continue

        ours_dense = (shape.get('dense') or {}).get('fast')
        sdpa_ms = None
        base = {'shape': name, 'dims': dims, 'inputs': inputs}
        if sdpa is not None:
            try:
                sdpa_ms = cuda_time(lambda: sdpa(q, k, v, scale=scale))[0]
            except TypeError:  # torch < 2.1: no scale argument (default 1/sqrt(D) is the same)
                sdpa_ms = cuda_time(lambda: sdpa(q, k, v))[0]
            except Exception as e:
                notes.append(f'{name}: SDPA failed: {type(e).__name__}: {str(e).splitlines()[0][:160]}')
        layouts = ['full', 'partial'] if args.layout == 'both' else [args.layout]

        def flex_row(label, mask_np, density, ours_ms):
            row = {**base, 'mask': label, 'density': density,
                   'ours ms': ours_ms, 'ours TFLOP/s': flops * density / ours_ms / 1e9 if ours_ms else None,
                   'SDPA dense ms': sdpa_ms, 'SDPA TFLOP/s': flops / sdpa_ms / 1e9 if sdpa_ms else None,
                   'speedup vs SDPA': sdpa_ms / ours_ms if sdpa_ms and ours_ms else None}
            mask_t = torch.from_numpy(mask_np).to(dev) if mask_np is not None else None
            for layout in layouts:
                col = 'flex' if len(layouts) == 1 else f'flex {layout}'
                if flex_attention is None:
                    row[f'{col} ms'] = 'n/a'
                    continue
                try:
                    m = mask_t if mask_t is not None else torch.ones(B, H, S // 64, S // 64, dtype=torch.uint8, device=dev)
                    bm = block_mask(m, layout)
                    torch.cuda.synchronize()
                    t0 = time.perf_counter()
                    out = flex_call(q, k, v, bm, scale)
                    torch.cuda.synchronize()
                    first = time.perf_counter() - t0
                    compile_rows.append({'shape': name, 'mask': label, 'layout': layout, 'first call s (compile)': first})
                    ms = cuda_time(lambda: flex_call(q, k, v, bm, scale))[0]
                    row[f'{col} ms'] = ms
                    row[f'{col} TFLOP/s'] = flops * density / ms / 1e9
                    row[f'speedup vs {col}'] = ms / ours_ms if ours_ms else None
                    ours_out = (shape.get('masks') or {}).get(label, {}).get('out') if label != 'all blocks' else None
                    if ours_out and layout == layouts[0]:
                        mine = torch.from_numpy(np.load(os.path.join(data_dir, ours_out))).to(dev)
                        ref = out.float()
                        nmse = ((mine - ref) ** 2).sum().item() / max((ref ** 2).sum().item(), 1e-30)
                        ok = nmse <= 5e-4
                        check_rows.append({'check': f'ours vs flex ({layout}), same mask thr {label}', 'shape': dims,
                                           'density': density, 'nMSE': nmse, 'max abs': (mine - ref).abs().max().item(),
                                           'result': 'PASS' if ok else 'FAIL'})
                        if not ok:
                            failures.append(check_rows[-1]['check'])
                    del out
                except Exception as e:
                    row[f'{col} ms'] = f'error: {type(e).__name__}: {str(e).splitlines()[0][:120]}'
            return row

        try:
            rows.append(flex_row('all blocks', None, 1.0, ours_dense))
            for thr, entry in sorted((shape.get('masks') or {}).items()):
                if not entry.get('file'):
                    continue
                mask_np = np.load(os.path.join(data_dir, entry['file']))
                density = float(mask_np.mean())
                rows.append(flex_row(thr, mask_np, density, entry.get('oursMs')))
        except Exception as e:
            say(f'compare_torch: {name}: {type(e).__name__}: {e}')
            failures.append(name)
        del q, k, v
        torch.cuda.empty_cache()

    say('## Ours vs SDPA (dense) vs FlexAttention (same mask)')
    say()
    say('TFLOP/s counts kept blocks only (2*B*H*S^2*(D+Dv)*density / time, lib/flops.ts); speedup = their ms / our ms (> 1: ours faster).')
    say('"all blocks" = dense attention (ours: the fast kernel without a mask; flex: a mask keeping every block).')
    say()
    cols = []
    for r in rows:
        for c in r:
            if c not in cols:
                cols.append(c)
    say(markdown_table([{c: r.get(c) for c in cols} for r in rows]) or '(no rows)')
    say()
    if compile_rows:
        say('## FlexAttention first call (torch.compile + autotune; not in the timings above)')
        say()
        say(markdown_table(compile_rows))
        say()
    if check_rows:
        say('## Correctness (pass: nMSE = sum (a-b)^2 / sum b^2 <= 5e-4)')
        say()
        say(markdown_table(check_rows))
        say()
    for n in notes:
        say(f'- note: {n}')
    passed = sum(1 for r in check_rows if r['result'] == 'PASS')
    say(f'compare_torch: {passed} checks passed, {len(failures)} failed')
    md = args.md or os.path.join(args.dir, 'compare_torch.md')
    try:
        with open(md, 'w') as f:
            f.write('\n'.join(out_lines) + '\n')
        with open(os.path.splitext(md)[0] + '.json', 'w') as f:
            json.dump({'rows': rows, 'compile': compile_rows, 'checks': check_rows, 'notes': notes,
                       'torch': torch.__version__}, f, indent=1, default=str)
    except OSError as e:
        print(f'compare_torch: could not write {md}: {e}')
    return 1 if failures else 0


def _triton_version():
    try:
        import triton
        return getattr(triton, '__version__', '?')
    except Exception:
        return 'absent'


if __name__ == '__main__':
    sys.exit(main())
