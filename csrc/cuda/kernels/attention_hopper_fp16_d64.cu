// Hopper attention instance: float16, head dim 64 (one instance per file so builds parallelise).
#include "../hopper/attention_hopper.cuh"

namespace nabla {
namespace cuda {
namespace hopper {

template Status launchHopperAttention<__half, 64>(const AttentionKernelParams& p, const RowSchedule& schedule,
                                                  cudaStream_t stream);

}  // namespace hopper
}  // namespace cuda
}  // namespace nabla
