// Fast2 attention instance: float16, head dim 128 (one instance per file so builds parallelise).
#include "../attention_fast2.cuh"

namespace nabla {
namespace cuda {

template Status launchFast2Attention<__half, 128>(const AttentionKernelParams& p, cudaStream_t stream);

}  // namespace cuda
}  // namespace nabla
