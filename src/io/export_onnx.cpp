#include "hg/io/export_onnx.h"
#include "hg/runtime/text.h"

#include "hg/data/readers.h"
#include "hg/io/atomic_file.h"
#include "hg/io/checkpoint.h"

#include <onnx/checker.h>
#include <onnx/onnx_pb.h>
#include <onnx/shape_inference/implementation.h>
#include <torch/torch.h>

#include <set>

namespace hg::io {
namespace {

namespace nn = torch::nn;

constexpr int64_t kMinOpset = 11;
constexpr int64_t kMaxOpset = 17;

void set_dim(onnx::TensorShapeProto::Dimension* d, int64_t value, const std::string& symbol) {
  if (symbol.empty())
    d->set_dim_value(value);
  else
    d->set_dim_param(symbol);
}

/// Value info of a float32 tensor; an empty symbol makes its dimension fixed.
void describe_tensor(onnx::ValueInfoProto* v, const std::string& name,
                     const std::vector<std::pair<int64_t, std::string>>& dims,
                     const std::string& doc) {
  v->set_name(name);
  v->set_doc_string(doc);
  auto* t = v->mutable_type()->mutable_tensor_type();
  t->set_elem_type(onnx::TensorProto::FLOAT);
  for (const auto& [value, symbol] : dims) set_dim(t->mutable_shape()->add_dim(), value, symbol);
}

// Emits the network's nodes into a graph. Values are named after the module that produces them,
// so that the exported graph reads like the model's state dict.
class GraphBuilder {
 public:
  /// `heatmap_side`: the heatmaps' fixed side, 0 when the size is dynamic.
  GraphBuilder(onnx::GraphProto& graph, const OnnxExportOptions& options, int64_t heatmap_side)
      : graph_(graph), options_(options), heatmap_side_(heatmap_side) {}

  std::string network(model::StackedHourglassImpl& m, const std::string& input,
                      const std::string& output) {
    auto x = relu(conv(input, "pre_conv", *m.pre_conv, m.pre_bn.get(), "pre_bn"), "pre_relu");
    x = residual(x, "pre_res1", *m.pre_res1);
    x = max_pool(x, "pre_pool");
    x = residual(residual(x, "pre_res2", *m.pre_res2), "pre_res3", *m.pre_res3);
    std::vector<std::string> heads;
    const int64_t stacks = m.options.stacks();
    for (int64_t s = 0; s < stacks; ++s) {
      const std::string i = std::to_string(s);
      auto y = hourglass(x, "hourglasses." + i, m.hourglasses->at<model::HourglassImpl>(s));
      y = sequence<model::ResidualImpl>(y, "res." + i, m.res->at<nn::SequentialImpl>(s));
      y = relu(conv(y, "fc_conv." + i, m.fc_conv->at<nn::Conv2dImpl>(s),
                    &m.fc_bn->at<nn::BatchNorm2dImpl>(s), "fc_bn." + i),
               "fc_relu." + i);
      const auto h = conv(y, "score." + i, m.score->at<nn::Conv2dImpl>(s));
      heads.push_back(h);
      if (s + 1 < stacks) {
        x = add(x, conv(y, "merge_features." + i, m.merge_features->at<nn::Conv2dImpl>(s)),
                "merge." + i + ".features");
        x = add(x, conv(h, "merge_preds." + i, m.merge_preds->at<nn::Conv2dImpl>(s)), "merge." + i);
      }
    }
    return stacked(heads, m.options.joints(), output, "heatmaps.shape");
  }

  /// CenterNet's `exkp`: one output per head, named after it (N×S×C×h×w).
  void network(model::LargeHourglassImpl& m, const std::string& input) {
    auto inter = residual(conv_bn_relu(input, "pre.0", m.pre->at<model::ConvBnReluImpl>(0)),
                          "pre.1", m.pre->at<model::BasicResidualImpl>(1));
    const auto heads = m.options.outputs();
    const bool features = m.options.head_style() == model::HeadStyle::kCornerNet;
    std::vector<std::vector<std::string>> outputs(heads.size());
    for (int64_t s = 0; s < m.options.stacks(); ++s) {
      const std::string i = std::to_string(s);
      const auto kp = level(inter, "kps." + i, m.kps->at<model::HourglassLevelImpl>(s));
      const auto cnv = conv_bn_relu(kp, "cnvs." + i, m.cnvs->at<model::ConvBnReluImpl>(s));
      if (features) outputs[0].push_back(cnv);
      for (size_t h = 0; h < heads.size() && !features; ++h) {
        const std::string p = heads[h].name + "." + i;
        const auto& head = m.heads[h]->ptr(s);
        if (m.options.head_style() == model::HeadStyle::kMMPose) {
          outputs[h].push_back(conv(cnv, p, *head->as<nn::Conv2dImpl>()));
          continue;
        }
        auto& seq = *head->as<nn::SequentialImpl>();
        const auto y = conv_bn_relu(cnv, p + ".0", *seq.ptr<model::ConvBnReluImpl>(0));
        outputs[h].push_back(conv(y, p + ".1", *seq.ptr<nn::Conv2dImpl>(1)));
      }
      if (s + 1 < m.options.stacks()) {
        auto& a = m.inters_->at<nn::SequentialImpl>(s);
        auto& b = m.cnvs_->at<nn::SequentialImpl>(s);
        inter = relu(add(conv(inter, "inters_." + i + ".0", *a.ptr<nn::Conv2dImpl>(0),
                              a.ptr(1)->as<nn::BatchNorm2dImpl>(), "inters_." + i + ".1"),
                         conv(cnv, "cnvs_." + i + ".0", *b.ptr<nn::Conv2dImpl>(0),
                              b.ptr(1)->as<nn::BatchNorm2dImpl>(), "cnvs_." + i + ".1"),
                         "merge." + i),
                     "merge." + i + ".relu");
        inter = residual(inter, "inters." + i, m.inters->at<model::BasicResidualImpl>(s));
      }
    }
    for (size_t h = 0; h < heads.size(); ++h)
      stacked(outputs[h], heads[h].channels, heads[h].name, heads[h].name + ".shape");
  }

 private:
  using IntAttributes = std::vector<std::pair<const char*, std::vector<int64_t>>>;

  std::string node(const char* op, const std::string& name, const std::vector<std::string>& inputs,
                   const IntAttributes& ints = {}) {
    TORCH_CHECK(names_.insert(name).second, "ONNX export: value name '", name, "' used twice");
    auto* n = graph_.add_node();
    n->set_op_type(op);
    n->set_name(name);
    for (const auto& i : inputs) n->add_input(i);
    n->add_output(name);
    for (const auto& [key, values] : ints) {
      auto* a = n->add_attribute();
      a->set_name(key);
      if (values.size() == 1 && std::string(key) == "axis") {
        a->set_type(onnx::AttributeProto::INT);
        a->set_i(values[0]);
      } else {
        a->set_type(onnx::AttributeProto::INTS);
        for (int64_t v : values) a->add_ints(v);
      }
    }
    return name;
  }

  void string_attribute(const std::string& node_name, const char* key, const std::string& value) {
    auto* n = graph_.mutable_node(graph_.node_size() - 1);
    TORCH_CHECK(n->name() == node_name, "ONNX export: attribute for a node not just added");
    auto* a = n->add_attribute();
    a->set_name(key);
    a->set_type(onnx::AttributeProto::STRING);
    a->set_s(value);
  }

  std::string initializer(const std::string& name, const at::Tensor& t) {
    const auto data = t.detach().to(torch::kFloat).contiguous();
    auto* init = graph_.add_initializer();
    init->set_name(name);
    init->set_data_type(onnx::TensorProto::FLOAT);
    for (int64_t d : data.sizes()) init->add_dims(d);
    init->set_raw_data(data.data_ptr(), data.numel() * sizeof(float));
    return name;
  }

  std::string int64_initializer(const std::string& name, const std::vector<int64_t>& values) {
    if (names_.insert(name).second) {
      auto* init = graph_.add_initializer();
      init->set_name(name);
      init->set_data_type(onnx::TensorProto::INT64);
      init->add_dims(static_cast<int64_t>(values.size()));
      for (int64_t v : values) init->add_int64_data(v);
    }
    return name;
  }

  // A convolution; `bn`, when given, is the batch norm that directly follows it: folded into its
  // weights (y = s·(Wx + b - mean) + beta with s = gamma/sqrt(var + eps), computed in double) or
  // emitted as its own node.
  std::string conv(const std::string& x, const std::string& name, const nn::Conv2dImpl& c,
                   const nn::BatchNorm2dImpl* bn = nullptr, const std::string& bn_name = "") {
    auto w = c.weight.detach().to(torch::kDouble);
    auto b = c.bias.defined() ? c.bias.detach().to(torch::kDouble)
                              : torch::zeros({w.size(0)}, torch::kDouble);
    const bool fold = bn != nullptr && options_.fold_batch_norm;
    if (fold) {
      const auto scale = bn->weight.detach().to(torch::kDouble) /
                         (bn->running_var.detach().to(torch::kDouble) + bn->options.eps()).sqrt();
      w = w * scale.view({-1, 1, 1, 1});
      b = (b - bn->running_mean.detach().to(torch::kDouble)) * scale +
          bn->bias.detach().to(torch::kDouble);
    }
    const auto& o = c.options;
    const int64_t k = (*o.kernel_size())[0], stride = (*o.stride())[0];
    const int64_t pad = c10::get<torch::ExpandingArray<2>>(o.padding())->at(0);
    const auto out = node(
        "Conv", name, {x, initializer(name + ".weight", w), initializer(name + ".bias", b)},
        {{"kernel_shape", {k, k}}, {"strides", {stride, stride}}, {"pads", {pad, pad, pad, pad}}});
    return bn != nullptr && !fold ? batch_norm(out, bn_name, *bn) : out;
  }

  std::string batch_norm(const std::string& x, const std::string& name,
                         const nn::BatchNorm2dImpl& bn) {
    node("BatchNormalization", name,
         {x, initializer(name + ".weight", bn.weight), initializer(name + ".bias", bn.bias),
          initializer(name + ".running_mean", bn.running_mean),
          initializer(name + ".running_var", bn.running_var)});
    auto* a = graph_.mutable_node(graph_.node_size() - 1)->add_attribute();
    a->set_name("epsilon");
    a->set_type(onnx::AttributeProto::FLOAT);
    a->set_f(static_cast<float>(bn.options.eps()));
    return name;
  }

  std::string relu(const std::string& x, const std::string& name) {
    return node("Relu", name, {x});
  }
  std::string add(const std::string& a, const std::string& b, const std::string& name) {
    return node("Add", name, {a, b});
  }
  std::string max_pool(const std::string& x, const std::string& name) {
    return node("MaxPool", name, {x}, {{"kernel_shape", {2, 2}}, {"strides", {2, 2}}});
  }

  // Nearest-neighbour ×2 as PyTorch's upsample_nearest2d: source index floor(i / 2).
  std::string upsample(const std::string& x, const std::string& name) {
    if (scales_.empty()) {
      scales_ = "upsample.scales";
      names_.insert(scales_);
      auto* init = graph_.add_initializer();
      init->set_name(scales_);
      init->set_data_type(onnx::TensorProto::FLOAT);
      init->add_dims(4);
      for (float s : {1.f, 1.f, 2.f, 2.f}) init->add_float_data(s);
      // Opset 11 requires the (unused) region of interest as an input; from 13 it may be empty.
      if (options_.opset < 13) {
        roi_ = "upsample.roi";
        auto* r = graph_.add_initializer();
        r->set_name(roi_);
        r->set_data_type(onnx::TensorProto::FLOAT);
        r->add_dims(0);
      }
    }
    node("Resize", name, {x, roi_, scales_});
    string_attribute(name, "mode", "nearest");
    string_attribute(name, "coordinate_transformation_mode", "asymmetric");
    string_attribute(name, "nearest_mode", "floor");
    return name;
  }

  // N×C×h×w → N×1×C×h×w. A fixed size is a Reshape (to the initializer `shape`): OpenCV 4.6
  // misplaces the new axis of an Unsqueeze whose input has a dynamic batch alone (it returns
  // N×1×1×C×h×w).
  std::string add_stack_axis(const std::string& x, int64_t channels, const std::string& name,
                             const std::string& shape) {
    if (heatmap_side_ == 0) return unsqueeze(x, name);
    return node("Reshape", name,
                {x, int64_initializer(shape, {-1, 1, channels, heatmap_side_, heatmap_side_})});
  }

  // Every stack's N×C×h×w output as `output`, N×S×C×h×w (only the last with last_stack_only).
  std::string stacked(const std::vector<std::string>& per_stack, int64_t channels,
                      const std::string& output, const std::string& shape) {
    if (options_.last_stack_only || per_stack.size() == 1)
      return add_stack_axis(per_stack.back(), channels, output, shape);
    std::vector<std::string> parts;
    for (const auto& x : per_stack)
      parts.push_back(add_stack_axis(x, channels, x + ".unsqueeze", shape));
    return node("Concat", output, parts, {{"axis", {1}}});
  }

  std::string unsqueeze(const std::string& x, const std::string& name) {
    if (options_.opset < 13) return node("Unsqueeze", name, {x}, {{"axes", {1}}});
    return node("Unsqueeze", name, {x, int64_initializer("unsqueeze.axes", {1})});
  }

  std::string residual(const std::string& x, const std::string& p, model::ResidualImpl& r) {
    auto y = relu(batch_norm(x, p + ".bn1", *r.bn1), p + ".relu1");
    y = relu(conv(y, p + ".conv1", *r.conv1, r.bn2.get(), p + ".bn2"), p + ".relu2");
    y = relu(conv(y, p + ".conv2", *r.conv2, r.bn3.get(), p + ".bn3"), p + ".relu3");
    y = conv(y, p + ".conv3", *r.conv3);
    return add(y, r.has_skip() ? conv(x, p + ".skip", *r.skip) : x, p + ".add");
  }

  // The residuals of a Sequential, of Newell's (ResidualImpl) or CenterNet's (BasicResidualImpl).
  template <typename Residual>
  std::string sequence(std::string x, const std::string& p, nn::SequentialImpl& seq) {
    for (size_t i = 0; i < seq.size(); ++i)
      x = residual(x, p + "." + std::to_string(i), *seq.ptr<Residual>(i));
    return x;
  }

  std::string conv_bn_relu(const std::string& x, const std::string& p, model::ConvBnReluImpl& c) {
    return relu(conv(x, p + ".conv", *c.conv, c.bn.is_empty() ? nullptr : c.bn.get(), p + ".bn"),
                p + ".relu");
  }

  std::string residual(const std::string& x, const std::string& p, model::BasicResidualImpl& r) {
    auto y = relu(conv(x, p + ".conv1", *r.conv1, r.bn1.get(), p + ".bn1"), p + ".relu1");
    y = conv(y, p + ".conv2", *r.conv2, r.bn2.get(), p + ".bn2");
    const auto skip = r.has_skip() ? conv(x, p + ".skip.0", *r.skip->ptr<nn::Conv2dImpl>(0),
                                          r.skip->ptr(1)->as<nn::BatchNorm2dImpl>(), p + ".skip.1")
                                   : x;
    return relu(add(y, skip, p + ".add"), p + ".relu");
  }

  std::string level(const std::string& x, const std::string& p, model::HourglassLevelImpl& l) {
    const auto up = sequence<model::BasicResidualImpl>(x, p + ".up1", *l.up1);
    auto low = sequence<model::BasicResidualImpl>(x, p + ".low1", *l.low1);
    low = l.low2 ? level(low, p + ".low2", *l.low2)
                 : sequence<model::BasicResidualImpl>(low, p + ".low2", *l.low2_res);
    low = sequence<model::BasicResidualImpl>(low, p + ".low3", *l.low3);
    return add(up, upsample(low, p + ".up2"), p + ".add");
  }

  std::string hourglass(const std::string& x, const std::string& p, model::HourglassImpl& h) {
    const auto up = sequence<model::ResidualImpl>(x, p + ".up1", *h.up1);
    auto low = sequence<model::ResidualImpl>(max_pool(x, p + ".pool"), p + ".low1", *h.low1);
    low = h.low2 ? hourglass(low, p + ".low2", *h.low2)
                 : sequence<model::ResidualImpl>(low, p + ".low2", *h.low2_res);
    low = sequence<model::ResidualImpl>(low, p + ".low3", *h.low3);
    return add(up, upsample(low, p + ".up2"), p + ".add");
  }

  onnx::GraphProto& graph_;
  const OnnxExportOptions& options_;
  const int64_t heatmap_side_;
  std::set<std::string> names_;
  std::string scales_, roi_;
};

void add_metadata(onnx::ModelProto& m, const std::string& key, const std::string& value) {
  auto* p = m.add_metadata_props();
  p->set_key(key);
  p->set_value(value);
}

void add_metadata(onnx::ModelProto& m, const model::StackedHourglassOptions& arch,
                  const DeploymentInfo& info, int64_t out_stacks) {
  using nlohmann::json;
  const auto joints = data::joint_set_to_json(info.joints);
  add_metadata(m, "joint_set", info.joints.name);
  add_metadata(m, "joint_names", runtime::json_text(joints.at("joints")));
  add_metadata(m, "flip_pairs", runtime::json_text(joints.at("flip_pairs")));
  add_metadata(m, "skeleton", runtime::json_text(joints.at("skeleton")));
  add_metadata(m, "input_size", std::to_string(info.input_size));
  add_metadata(m, "pixel_grid", data::pixel_grid_name(info.grid));
  add_metadata(m, "input",
               "image: N×3×H×W float32, RGB in [0, 1], a crop of side 200·scale "
               "pixels around the person");
  add_metadata(m, "mean", runtime::json_text(json({0.0, 0.0, 0.0})));
  add_metadata(m, "std", runtime::json_text(json({1.0, 1.0, 1.0})));
  add_metadata(m, "output",
               "heatmaps: N×" + std::to_string(out_stacks) + "×" + std::to_string(arch.joints()) +
                   "×(H/4)×(W/4), one heatmap per joint per stack; the last stack is "
                   "the prediction");
  add_metadata(m, "architecture", runtime::json_text(options_to_json(arch)));
  if (!info.meta.is_null()) add_metadata(m, "meta", runtime::json_text(info.meta));
}

}  // namespace

namespace {

onnx::ModelProto new_model(const OnnxExportOptions& options, const std::string& doc,
                           const std::string& graph_name) {
  TORCH_CHECK(options.opset >= kMinOpset && options.opset <= kMaxOpset, "ONNX opset ",
              options.opset, " is not supported: use ", kMinOpset, " to ", kMaxOpset, " (default ",
              kDefaultOnnxOpset, ")");
  onnx::ModelProto m;
  m.set_ir_version(onnx::IR_VERSION);
  m.set_producer_name("hourglass");
  m.set_doc_string(doc);
  auto* opset = m.add_opset_import();
  opset->set_domain("");
  opset->set_version(options.opset);
  m.mutable_graph()->set_name(graph_name);
  return m;
}

// The input `image` N×3×side×side (height and width symbolic with dynamic_size).
void describe_image(onnx::GraphProto& graph, int64_t side, bool dynamic, const std::string& doc) {
  const std::string h = dynamic ? "height" : "", w = dynamic ? "width" : "";
  describe_tensor(graph.add_input(), "image", {{0, "batch"}, {3, ""}, {side, h}, {side, w}}, doc);
}

// An output N×S×C×(side/4)×(side/4).
void describe_output(onnx::GraphProto& graph, const std::string& name, int64_t stacks,
                     int64_t channels, int64_t side, bool dynamic, const std::string& doc) {
  describe_tensor(graph.add_output(), name,
                  {{0, "batch"},
                   {stacks, ""},
                   {channels, ""},
                   {side / 4, dynamic ? "height/4" : ""},
                   {side / 4, dynamic ? "width/4" : ""}},
                  doc);
}

// Checks the model with libonnx (checker, then strict shape inference on a copy: a shape it
// derives that contradicts a declared output throws) and serialises it.
std::string checked_bytes(const onnx::ModelProto& m, const std::string& description) {
  try {
    onnx::checker::check_model(m);
    onnx::ModelProto inferred = m;
    onnx::shape_inference::InferShapes(inferred, onnx::OpSchemaRegistry::Instance(),
                                       onnx::ShapeInferenceOptions(true, 1, false));
  } catch (const std::exception& e) {
    TORCH_CHECK(false, "ONNX export of ", description, " failed validation: ", e.what());
  }
  std::string bytes;
  TORCH_CHECK(m.SerializeToString(&bytes), "ONNX export: protobuf cannot serialise the model (",
              description, "); is it over 2 GB?");
  return bytes;
}

}  // namespace

std::string onnx_model_bytes(model::StackedHourglassImpl& model, const DeploymentInfo& info,
                             const OnnxExportOptions& options) {
  const auto& arch = model.options;
  TORCH_CHECK(info.joints.size() == arch.joints(), "ONNX export: the joint set '", info.joints.name,
              "' has ", info.joints.size(), " joints, the model ", arch.joints());
  if (!options.dynamic_size)
    arch.check_input_size(info.input_size, info.input_size, "the ONNX export's input size");
  torch::NoGradGuard no_grad;
  auto m = new_model(options, "Stacked hourglass network (" + arch.describe() + ")",
                     "stacked_hourglass");
  auto* graph = m.mutable_graph();
  const int64_t side = info.input_size, out_stacks = options.last_stack_only ? 1 : arch.stacks();
  describe_image(*graph, side, options.dynamic_size, "N×3×H×W float32 RGB in [0, 1]");
  describe_output(*graph, "heatmaps", out_stacks, arch.joints(), side, options.dynamic_size,
                  "N×S×J×(H/4)×(W/4) heatmaps");
  GraphBuilder(*graph, options, options.dynamic_size ? 0 : side / 4)
      .network(model, "image", "heatmaps");
  add_metadata(m, arch, info, out_stacks);
  return checked_bytes(m, arch.describe());
}

std::string onnx_model_bytes(model::LargeHourglassImpl& model, int64_t input_size,
                             const nlohmann::json& meta, const OnnxExportOptions& options) {
  const auto& arch = model.options;
  TORCH_CHECK(!arch.outputs().empty(), "ONNX export of ", arch.describe(),
              ": the model has no heads, so the graph would have no output");
  if (!options.dynamic_size)
    arch.check_input_size(input_size, input_size, "the ONNX export's input size");
  torch::NoGradGuard no_grad;
  auto m = new_model(options, "CornerNet/CenterNet hourglass (" + arch.describe() + ")",
                     "large_hourglass");
  auto* graph = m.mutable_graph();
  const int64_t out_stacks = options.last_stack_only ? 1 : arch.stacks();
  describe_image(*graph, input_size, options.dynamic_size,
                 "N×3×H×W float32, normalised as the model was trained");
  for (const auto& head : arch.outputs())
    describe_output(*graph, head.name, out_stacks, head.channels, input_size, options.dynamic_size,
                    "N×S×C×(H/4)×(W/4) head '" + head.name + "'");
  GraphBuilder(*graph, options, options.dynamic_size ? 0 : input_size / 4).network(model, "image");
  add_metadata(m, "architecture", runtime::json_text(large_options_to_json(arch)));
  add_metadata(m, "input_size", std::to_string(input_size));
  add_metadata(m, "input",
               "image: N×3×H×W float32, normalised as the model was trained (CenterNet's COCO "
               "models: BGR channel order, (value/255 - mean) / std)");
  add_metadata(m, "output",
               "one output per head (a CornerNet model: its features, whose corner heads are "
               "not run), N×" +
                   std::to_string(out_stacks) +
                   "×C×(H/4)×(W/4); the last stack is the prediction; heads named hm* are "
                   "logits (CenterNet decodes their sigmoid)");
  if (!meta.is_null() && !meta.empty()) add_metadata(m, "meta", runtime::json_text(meta));
  return checked_bytes(m, arch.describe());
}

void export_onnx(const std::string& path, model::LargeHourglassImpl& model, int64_t input_size,
                 const nlohmann::json& meta, const OnnxExportOptions& options) {
  write_file_atomic(path, onnx_model_bytes(model, input_size, meta, options));
}

void export_onnx(const std::string& path, model::StackedHourglassImpl& model,
                 const DeploymentInfo& info, const OnnxExportOptions& options) {
  write_file_atomic(path, onnx_model_bytes(model, info, options));
}

}  // namespace hg::io
