// GRUCell's elementwise math as two TensorFlow ops forward and two backward.
//
// tf.compat.v1.nn.rnn_cell.GRUCell runs a step as
//   gates = sigmoid([x, h_prev] @ gate_kernel + gate_bias);  r, u = split(gates, 2)
//   cand  = tanh([x, r * h_prev] @ candidate_kernel + candidate_bias)
//   h     = u * h_prev + (1 - u) * cand
// about ten small ops besides its two MatMuls, and twice as many for the gradient. The
// candidate's MatMul needs r * h_prev, so the elementwise math cannot be one op: it is
//   MnistRnnGruGates: sum(parts) + bias -> sigmoid -> (r * h_prev, [r, u])
//   MnistRnnGruState: sum(parts) + bias -> tanh    -> (h, cand)
// where parts are one product of the concatenation with the kernel, or the products of
// its rows for x and for h (fused_gru.py says when each). The MatMuls stay TensorFlow's.
// The activations use Eigen's logistic and tanh, as TensorFlow's Sigmoid and Tanh do.

#include <vector>

#include "gate_kernels.h"

namespace {

REGISTER_OP("MnistRnnGruGates")
    .Input("parts: N * float")  // each [batch, 2 * units]: summed, gates r, u
    .Input("bias: float")       // [2 * units]
    .Input("h_prev: float")     // [batch, units]
    .Attr("N: int >= 1")
    .Output("r_h: float")    // [batch, units]: r * h_prev, the candidate MatMul's input
    .Output("acts: float")   // [batch, 2 * units]: sigmoid(r), sigmoid(u)
    .SetShapeFn([](InferenceContext* ctx) {
      ctx->set_output(0, ctx->input(ctx->num_inputs() - 1));
      ctx->set_output(1, ctx->input(0));
      return absl::OkStatus();
    });

REGISTER_OP("MnistRnnGruGatesGrad")
    .Input("h_prev: float")  // [batch, units]
    .Input("acts: float")    // [batch, 2 * units], from MnistRnnGruGates
    .Input("dr_h: float")    // [batch, units]: gradient arriving at r_h
    .Input("dacts: float")   // [batch, 2 * units]: gradient arriving at acts
    .Output("dgates: float")  // [batch, 2 * units]: the gradient of each part
    .Output("dbias: float")   // [2 * units]: dgates summed over the batch
    .Output("dh_prev: float")  // [batch, units]: through r * h_prev only
    .SetShapeFn([](InferenceContext* ctx) {
      ctx->set_output(0, ctx->input(1));
      ctx->set_output(1, ctx->Vector(ctx->Dim(ctx->input(1), 1)));
      ctx->set_output(2, ctx->input(0));
      return absl::OkStatus();
    });

REGISTER_OP("MnistRnnGruState")
    .Input("parts: N * float")  // each [batch, units]: summed, the candidate
    .Input("bias: float")       // [units]
    .Input("acts: float")       // [batch, 2 * units], from MnistRnnGruGates (u is used)
    .Input("h_prev: float")     // [batch, units]
    .Attr("N: int >= 1")
    .Output("h: float")      // [batch, units]
    .Output("cand: float")   // [batch, units]: tanh of the candidate, for the gradient
    .SetShapeFn([](InferenceContext* ctx) {
      ctx->set_output(0, ctx->input(ctx->num_inputs() - 1));
      ctx->set_output(1, ctx->input(ctx->num_inputs() - 1));
      return absl::OkStatus();
    });

REGISTER_OP("MnistRnnGruStateGrad")
    .Input("acts: float")    // [batch, 2 * units]
    .Input("h_prev: float")  // [batch, units]
    .Input("cand: float")    // [batch, units]
    .Input("dh: float")      // [batch, units]: gradient arriving at h
    .Input("dcand: float")   // [batch, units]: gradient arriving at cand
    .Output("dparts: float")  // [batch, units]: the gradient of each part
    .Output("dbias: float")   // [units]
    .Output("dacts: float")   // [batch, 2 * units]: zero for r, the gradient of u
    .Output("dh_prev: float")  // [batch, units]: through u * h_prev only
    .SetShapeFn([](InferenceContext* ctx) {
      ctx->set_output(0, ctx->input(1));
      ctx->set_output(1, ctx->Vector(ctx->Dim(ctx->input(1), 1)));
      ctx->set_output(2, ctx->input(0));
      ctx->set_output(3, ctx->input(1));
      return absl::OkStatus();
    });

// Checks parts (each [batch, width]) and bias ([width]) against h_prev's batch.
absl::Status CheckParts(const ::tensorflow::OpInputList& parts, const Tensor& bias,
                        int64_t batch, int64_t width) {
  for (int k = 0; k < parts.size(); ++k) {
    auto status = CheckMatrix(parts[k], "each of parts", batch, width);
    if (!status.ok()) return status;
  }
  if (bias.dims() != 1 || bias.dim_size(0) != width) {
    return absl::InvalidArgumentError(absl::StrCat("bias must be [", width, "], got ",
                                                   bias.shape().DebugString()));
  }
  return absl::OkStatus();
}

// Row r of sum(parts) + bias, into `out`.
void SumRow(const ::tensorflow::OpInputList& parts, const ConstRow& bias, int64_t r,
            Array* out) {
  const int64_t width = bias.size();
  *out = ConstRow(parts[0].flat<float>().data() + r * width, width) + bias;
  for (int k = 1; k < parts.size(); ++k) {
    *out += ConstRow(parts[k].flat<float>().data() + r * width, width);
  }
}

class GruGatesOp : public OpKernel {
 public:
  explicit GruGatesOp(OpKernelConstruction* ctx) : OpKernel(ctx) {}

  void Compute(OpKernelContext* ctx) override {
    ::tensorflow::OpInputList parts;
    OP_REQUIRES_OK(ctx, ctx->input_list("parts", &parts));
    const Tensor& bias = ctx->input(parts.size());
    const Tensor& h_prev = ctx->input(parts.size() + 1);
    OP_REQUIRES(ctx, h_prev.dims() == 2,
                absl::InvalidArgumentError("h_prev must be [batch, units]"));
    const int64_t batch = h_prev.dim_size(0), units = h_prev.dim_size(1);
    OP_REQUIRES_OK(ctx, CheckParts(parts, bias, batch, 2 * units));
    Tensor *r_h, *acts;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, h_prev.shape(), &r_h));
    // acts may take over a part's buffer: a row is summed before it is written.
    std::vector<int> part_indices(parts.size());
    for (int k = 0; k < parts.size(); ++k) part_indices[k] = k;
    OP_REQUIRES_OK(ctx, ctx->forward_input_or_allocate_output(
                            part_indices, 1, parts[0].shape(), &acts));
    const ConstRow bias_row(bias.flat<float>().data(), 2 * units);
    Array gates(2 * units);
    for (int64_t r = 0; r < batch; ++r) {
      SumRow(parts, bias_row, r, &gates);
      Row out(acts->flat<float>().data() + r * 2 * units, 2 * units);
      out = gates.logistic();
      Row(r_h->flat<float>().data() + r * units, units) =
          out.head(units) * ConstRow(h_prev.flat<float>().data() + r * units, units);
    }
  }
};

class GruGatesGradOp : public OpKernel {
 public:
  explicit GruGatesGradOp(OpKernelConstruction* ctx) : OpKernel(ctx) {}

  void Compute(OpKernelContext* ctx) override {
    const Tensor& h_prev = ctx->input(0);
    const Tensor& acts = ctx->input(1);
    const Tensor& dr_h = ctx->input(2);
    const Tensor& dacts = ctx->input(3);
    OP_REQUIRES(ctx, h_prev.dims() == 2,
                absl::InvalidArgumentError("h_prev must be [batch, units]"));
    const int64_t batch = h_prev.dim_size(0), units = h_prev.dim_size(1);
    OP_REQUIRES_OK(ctx, CheckMatrix(acts, "acts", batch, 2 * units));
    OP_REQUIRES_OK(ctx, CheckMatrix(dr_h, "dr_h", batch, units));
    OP_REQUIRES_OK(ctx, CheckMatrix(dacts, "dacts", batch, 2 * units));
    Tensor *dgates, *dbias, *dh_prev;
    // dgates may take over dacts' buffer and dh_prev dr_h's: each slot is read before
    // it is written.
    OP_REQUIRES_OK(ctx, ctx->forward_input_or_allocate_output({3}, 0, acts.shape(), &dgates));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, TensorShape({2 * units}), &dbias));
    OP_REQUIRES_OK(ctx, ctx->forward_input_or_allocate_output({2}, 2, h_prev.shape(), &dh_prev));
    Row dbias_row(dbias->flat<float>().data(), 2 * units);
    dbias_row.setZero();
    for (int64_t r = 0; r < batch; ++r) {
      const float* a = acts.flat<float>().data() + r * 2 * units;
      const ConstRow gate_r(a, units), gate_u(a + units, units);
      const ConstRow h_row(h_prev.flat<float>().data() + r * units, units);
      const ConstRow da(dacts.flat<float>().data() + r * 2 * units, 2 * units);
      const ConstRow dr_h_row(dr_h.flat<float>().data() + r * units, units);
      Row out(dgates->flat<float>().data() + r * 2 * units, 2 * units);
      // r reaches the loss through r * h_prev (and through acts, if anything reads it).
      out.head(units) = (da.head(units) + dr_h_row * h_row) * gate_r * (1.f - gate_r);
      out.tail(units) = da.tail(units) * gate_u * (1.f - gate_u);
      Row(dh_prev->flat<float>().data() + r * units, units) = dr_h_row * gate_r;
      dbias_row += out;
    }
  }
};

class GruStateOp : public OpKernel {
 public:
  explicit GruStateOp(OpKernelConstruction* ctx) : OpKernel(ctx) {}

  void Compute(OpKernelContext* ctx) override {
    ::tensorflow::OpInputList parts;
    OP_REQUIRES_OK(ctx, ctx->input_list("parts", &parts));
    const Tensor& bias = ctx->input(parts.size());
    const Tensor& acts = ctx->input(parts.size() + 1);
    const Tensor& h_prev = ctx->input(parts.size() + 2);
    OP_REQUIRES(ctx, h_prev.dims() == 2,
                absl::InvalidArgumentError("h_prev must be [batch, units]"));
    const int64_t batch = h_prev.dim_size(0), units = h_prev.dim_size(1);
    OP_REQUIRES_OK(ctx, CheckParts(parts, bias, batch, units));
    OP_REQUIRES_OK(ctx, CheckMatrix(acts, "acts", batch, 2 * units));
    Tensor *h, *cand;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, h_prev.shape(), &h));
    std::vector<int> part_indices(parts.size());
    for (int k = 0; k < parts.size(); ++k) part_indices[k] = k;
    OP_REQUIRES_OK(ctx, ctx->forward_input_or_allocate_output(
                            part_indices, 1, h_prev.shape(), &cand));
    const ConstRow bias_row(bias.flat<float>().data(), units);
    Array sum(units);
    for (int64_t r = 0; r < batch; ++r) {
      SumRow(parts, bias_row, r, &sum);
      Row c(cand->flat<float>().data() + r * units, units);
      c = sum.tanh();
      const ConstRow u(acts.flat<float>().data() + r * 2 * units + units, units);
      // GRUCell's own expression, in its order: u * h_prev + (1 - u) * c.
      Row(h->flat<float>().data() + r * units, units) =
          u * ConstRow(h_prev.flat<float>().data() + r * units, units) + (1.f - u) * c;
    }
  }
};

class GruStateGradOp : public OpKernel {
 public:
  explicit GruStateGradOp(OpKernelConstruction* ctx) : OpKernel(ctx) {}

  void Compute(OpKernelContext* ctx) override {
    const Tensor& acts = ctx->input(0);
    const Tensor& h_prev = ctx->input(1);
    const Tensor& cand = ctx->input(2);
    const Tensor& dh = ctx->input(3);
    const Tensor& dcand = ctx->input(4);
    OP_REQUIRES(ctx, h_prev.dims() == 2,
                absl::InvalidArgumentError("h_prev must be [batch, units]"));
    const int64_t batch = h_prev.dim_size(0), units = h_prev.dim_size(1);
    OP_REQUIRES_OK(ctx, CheckMatrix(acts, "acts", batch, 2 * units));
    OP_REQUIRES_OK(ctx, CheckMatrix(cand, "cand", batch, units));
    OP_REQUIRES_OK(ctx, CheckMatrix(dh, "dh", batch, units));
    OP_REQUIRES_OK(ctx, CheckMatrix(dcand, "dcand", batch, units));
    Tensor *dparts, *dbias, *dacts, *dh_prev;
    // dparts may take over dcand's buffer and dh_prev dh's: each slot is read before
    // it is written.
    OP_REQUIRES_OK(ctx, ctx->forward_input_or_allocate_output({4}, 0, cand.shape(), &dparts));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, TensorShape({units}), &dbias));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(2, acts.shape(), &dacts));
    OP_REQUIRES_OK(ctx, ctx->forward_input_or_allocate_output({3}, 3, h_prev.shape(), &dh_prev));
    Row dbias_row(dbias->flat<float>().data(), units);
    dbias_row.setZero();
    Array dh_row(units);
    for (int64_t r = 0; r < batch; ++r) {
      const ConstRow u(acts.flat<float>().data() + r * 2 * units + units, units);
      const ConstRow c(cand.flat<float>().data() + r * units, units);
      const ConstRow h_row(h_prev.flat<float>().data() + r * units, units);
      dh_row = ConstRow(dh.flat<float>().data() + r * units, units);
      Row out(dparts->flat<float>().data() + r * units, units);
      out = (ConstRow(dcand.flat<float>().data() + r * units, units) + dh_row * (1.f - u)) *
            (1.f - c * c);
      float* da = dacts->flat<float>().data() + r * 2 * units;
      Row(da, units).setZero();
      Row(da + units, units) = dh_row * (h_row - c);
      Row(dh_prev->flat<float>().data() + r * units, units) = dh_row * u;
      dbias_row += out;
    }
  }
};

REGISTER_KERNEL_BUILDER(Name("MnistRnnGruGates").Device(::tensorflow::DEVICE_CPU),
                        GruGatesOp);
REGISTER_KERNEL_BUILDER(Name("MnistRnnGruGatesGrad").Device(::tensorflow::DEVICE_CPU),
                        GruGatesGradOp);
REGISTER_KERNEL_BUILDER(Name("MnistRnnGruState").Device(::tensorflow::DEVICE_CPU),
                        GruStateOp);
REGISTER_KERNEL_BUILDER(Name("MnistRnnGruStateGrad").Device(::tensorflow::DEVICE_CPU),
                        GruStateGradOp);

}  // namespace
