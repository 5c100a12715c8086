// What both fused cells' kernels share: the names they use for rows of a batch, and
// the shape check of their inputs. Included by lstm_gates.cc and gru_gates.cc (each is
// built alone into its own library: models/fused_ops.py).
#ifndef MNIST_RNN_MODELS_KERNELS_GATE_KERNELS_H_
#define MNIST_RNN_MODELS_KERNELS_GATE_KERNELS_H_

#include "Eigen/Core"
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/shape_inference.h"

namespace {

using ::tensorflow::OpKernel;
using ::tensorflow::OpKernelConstruction;
using ::tensorflow::OpKernelContext;
using ::tensorflow::Tensor;
using ::tensorflow::TensorShape;
using ::tensorflow::shape_inference::InferenceContext;
using Array = Eigen::Array<float, Eigen::Dynamic, 1>;
using ConstRow = Eigen::Map<const Array>;
using Row = Eigen::Map<Array>;

// Checks that `t` is [batch, width].
absl::Status CheckMatrix(const Tensor& t, const char* name, int64_t batch, int64_t width) {
  if (t.dims() != 2 || t.dim_size(0) != batch || t.dim_size(1) != width) {
    return absl::InvalidArgumentError(absl::StrCat(
        name, " must be [", batch, ", ", width, "], got ", t.shape().DebugString()));
  }
  return absl::OkStatus();
}

}  // namespace

#endif  // MNIST_RNN_MODELS_KERNELS_GATE_KERNELS_H_
