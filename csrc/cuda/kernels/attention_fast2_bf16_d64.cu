// Fast2 attention instance: bfloat16, head dim 64 (one instance per file so builds parallelise).
#include "../attention_fast2.cuh"

namespace nabla {
namespace cuda {

template Status launchFast2Attention<__nv_bfloat16, 64>(const AttentionKernelParams& p, cudaStream_t stream);

}  // namespace cuda
}  // namespace nabla
