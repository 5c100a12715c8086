// LSTMCell's gate math as one TensorFlow op forward and one backward.
//
// tf.compat.v1.nn.rnn_cell.LSTMCell runs each step's gate math as about a dozen small
// ops (split, three sigmoids, two tanhs, three multiplies, two adds, the bias add) and
// its gradient as about twice as many. On a CPU each of those ops costs a few
// microseconds of work plus TensorFlow's cost of running an op, which together take
// as long as the step's matrix multiplies. These two kernels do the same math in one
// pass over the batch each; the matrix multiplies stay TensorFlow MatMuls (oneDNN).
//
// Equations (LSTMCell's, no peepholes, no projection, tanh activation):
//   i, j, f, o = split(sum(parts) + bias, 4)
// where parts are [x, h_prev] @ kernel as one product or as x @ kernel_x and
// h_prev @ kernel_h, the kernel's rows for x and for h (fused_lstm.py says when each).
//   c = c_prev * sigmoid(f + forget_bias) + sigmoid(i) * tanh(j)
//   h = tanh(c) * sigmoid(o)
// The activations use Eigen's sigmoid and tanh, the functions TensorFlow's own CPU
// Sigmoid and Tanh kernels use.

#include <vector>

#include "gate_kernels.h"

namespace {

REGISTER_OP("MnistRnnLstmGates")
    .Input("parts: N * float")  // each [batch, 4 * units]: summed, gates i, j, f, o
    .Input("bias: float")       // [4 * units]
    .Input("c_prev: float")     // [batch, units]
    .Attr("N: int >= 1")
    .Attr("forget_bias: float")
    .Output("c: float")      // [batch, units]
    .Output("h: float")      // [batch, units]
    .Output("acts: float")   // [batch, 4 * units]: sigmoid(i), tanh(j), sigmoid(f + fb),
                             // sigmoid(o), kept for the gradient
    .SetShapeFn([](InferenceContext* ctx) {
      const int c_prev = ctx->num_inputs() - 1;
      ctx->set_output(0, ctx->input(c_prev));
      ctx->set_output(1, ctx->input(c_prev));
      ctx->set_output(2, ctx->input(0));
      return absl::OkStatus();
    });

REGISTER_OP("MnistRnnLstmGatesGrad")
    .Input("c_prev: float")  // [batch, units]
    .Input("c: float")       // [batch, units]
    .Input("acts: float")    // [batch, 4 * units], from MnistRnnLstmGates
    .Input("dc: float")      // [batch, units]: gradient arriving at c
    .Input("dh: float")      // [batch, units]: gradient arriving at h
    .Output("dgates: float")  // [batch, 4 * units]: the gradient of each part
    .Output("dbias: float")  // [4 * units]: dgates summed over the batch
    .Output("dc_prev: float")  // [batch, units]
    .SetShapeFn([](InferenceContext* ctx) {
      ctx->set_output(0, ctx->input(2));
      ctx->set_output(1, ctx->Vector(ctx->Dim(ctx->input(2), 1)));
      ctx->set_output(2, ctx->input(0));
      return absl::OkStatus();
    });

class LstmGatesOp : public OpKernel {
 public:
  explicit LstmGatesOp(OpKernelConstruction* ctx) : OpKernel(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("forget_bias", &forget_bias_));
  }

  void Compute(OpKernelContext* ctx) override {
    ::tensorflow::OpInputList parts;
    OP_REQUIRES_OK(ctx, ctx->input_list("parts", &parts));
    const int n = parts.size();
    const Tensor& bias = ctx->input(n);
    const Tensor& c_prev = ctx->input(n + 1);
    OP_REQUIRES(ctx, c_prev.dims() == 2,
                absl::InvalidArgumentError("c_prev must be [batch, units]"));
    const int64_t batch = c_prev.dim_size(0), units = c_prev.dim_size(1);
    for (int k = 0; k < n; ++k) {
      OP_REQUIRES_OK(ctx, CheckMatrix(parts[k], "each of parts", batch, 4 * units));
    }
    OP_REQUIRES(ctx, bias.dims() == 1 && bias.dim_size(0) == 4 * units,
                absl::InvalidArgumentError("bias must be [4 * units]"));
    Tensor *c, *h, *acts;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, c_prev.shape(), &c));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, c_prev.shape(), &h));
    // acts may take over a part's buffer: a row is summed before it is written.
    std::vector<int> part_indices(n);
    for (int k = 0; k < n; ++k) part_indices[k] = k;
    OP_REQUIRES_OK(ctx, ctx->forward_input_or_allocate_output(
                            part_indices, 2, parts[0].shape(), &acts));
    const ConstRow bias_row(bias.flat<float>().data(), 4 * units);
    Array gates(4 * units);
    for (int64_t r = 0; r < batch; ++r) {
      gates = ConstRow(parts[0].flat<float>().data() + r * 4 * units, 4 * units) + bias_row;
      for (int k = 1; k < n; ++k) {
        gates += ConstRow(parts[k].flat<float>().data() + r * 4 * units, 4 * units);
      }
      float* out = acts->flat<float>().data() + r * 4 * units;
      Row i(out, units), j(out + units, units), f(out + 2 * units, units),
          o(out + 3 * units, units);
      i = gates.segment(0, units).logistic();
      j = gates.segment(units, units).tanh();
      f = (gates.segment(2 * units, units) + forget_bias_).logistic();
      o = gates.segment(3 * units, units).logistic();
      Row c_row(c->flat<float>().data() + r * units, units);
      c_row = ConstRow(c_prev.flat<float>().data() + r * units, units) * f + i * j;
      Row(h->flat<float>().data() + r * units, units) = c_row.tanh() * o;
    }
  }

 private:
  float forget_bias_;
};

class LstmGatesGradOp : public OpKernel {
 public:
  explicit LstmGatesGradOp(OpKernelConstruction* ctx) : OpKernel(ctx) {}

  void Compute(OpKernelContext* ctx) override {
    const Tensor& c_prev = ctx->input(0);
    const Tensor& c = ctx->input(1);
    const Tensor& acts = ctx->input(2);
    const Tensor& dc = ctx->input(3);
    const Tensor& dh = ctx->input(4);
    OP_REQUIRES(ctx, c_prev.dims() == 2,
                absl::InvalidArgumentError("c_prev must be [batch, units]"));
    const int64_t batch = c_prev.dim_size(0), units = c_prev.dim_size(1);
    OP_REQUIRES_OK(ctx, CheckMatrix(c, "c", batch, units));
    OP_REQUIRES_OK(ctx, CheckMatrix(acts, "acts", batch, 4 * units));
    OP_REQUIRES_OK(ctx, CheckMatrix(dc, "dc", batch, units));
    OP_REQUIRES_OK(ctx, CheckMatrix(dh, "dh", batch, units));
    Tensor *dgates, *dbias, *dc_prev;
    // dgates may take over acts' buffer and dc_prev dc's: the loop below reads each slot
    // before it writes it.
    OP_REQUIRES_OK(ctx, ctx->forward_input_or_allocate_output({2}, 0, acts.shape(), &dgates));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, TensorShape({4 * units}), &dbias));
    OP_REQUIRES_OK(ctx, ctx->forward_input_or_allocate_output({3}, 2, dc.shape(), &dc_prev));
    Row dbias_row(dbias->flat<float>().data(), 4 * units);
    dbias_row.setZero();
    Array tanh_c(units), dc_total(units), di(units);
    for (int64_t r = 0; r < batch; ++r) {
      const float* a = acts.flat<float>().data() + r * 4 * units;
      float* out = dgates->flat<float>().data() + r * 4 * units;
      const ConstRow i(a, units), j(a + units, units), f(a + 2 * units, units),
          o(a + 3 * units, units);
      const ConstRow dh_row(dh.flat<float>().data() + r * units, units);
      tanh_c = ConstRow(c.flat<float>().data() + r * units, units).tanh();
      // The gradient reaching c: from c itself and through h = tanh(c) * o.
      dc_total = ConstRow(dc.flat<float>().data() + r * units, units) +
                 dh_row * o * (1.f - tanh_c * tanh_c);
      Row(dc_prev->flat<float>().data() + r * units, units) = dc_total * f;
      di = dc_total * j * i * (1.f - i);  // before j's slot is overwritten
      Row(out + 3 * units, units) = dh_row * tanh_c * o * (1.f - o);
      Row(out + 2 * units, units) =
          dc_total * ConstRow(c_prev.flat<float>().data() + r * units, units) * f * (1.f - f);
      Row(out + units, units) = dc_total * i * (1.f - j * j);
      Row(out, units) = di;
      dbias_row += Row(out, 4 * units);
    }
  }
};

REGISTER_KERNEL_BUILDER(Name("MnistRnnLstmGates").Device(::tensorflow::DEVICE_CPU),
                        LstmGatesOp);
REGISTER_KERNEL_BUILDER(Name("MnistRnnLstmGatesGrad").Device(::tensorflow::DEVICE_CPU),
                        LstmGatesGradOp);

}  // namespace
