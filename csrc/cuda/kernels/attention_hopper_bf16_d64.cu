// Hopper attention instance: bfloat16, head dim 64 (one instance per file so builds parallelise).
#include "../hopper/attention_hopper.cuh"

namespace nabla {
namespace cuda {
namespace hopper {

template Status launchHopperAttention<__nv_bfloat16, 64>(const AttentionKernelParams& p, const RowSchedule& schedule,
                                                         cudaStream_t stream);

}  // namespace hopper
}  // namespace cuda
}  // namespace nabla
