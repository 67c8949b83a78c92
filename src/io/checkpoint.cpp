#include "hg/io/checkpoint.h"
#include "hg/runtime/text.h"

#include "hg/data/json.h"
#include "hg/io/import_centernet.h"
#include "hg/io/import_pytorch.h"
#include "hg/io/safetensors.h"
#include "hg/io/torch_file.h"
#include "hg/runtime/limits.h"
#include "load_state.h"
#include "state_keys.h"

#include <torch/torch.h>

#include <set>
#include <unordered_map>

namespace hg::io {
namespace {

constexpr const char* kFormatTag = "hourglass";
constexpr int64_t kFormatVersion = 1;

const PyValue& field(const PyValue& dict, const std::string& key, PyValue::Kind kind,
                     const std::string& path) {
  const PyValue* v = dict.find(key);
  TORCH_CHECK(v != nullptr, "cannot read ", path, ": the checkpoint lacks the key '", key, "'");
  TORCH_CHECK(v->kind == kind, "cannot read ", path, ": key '", key, "' holds a ", v->type_name());
  return *v;
}

nlohmann::json parse_json(const std::string& text, const std::string& key,
                          const std::string& path) {
  return data::parse_json(text, path + " (key '" + key + "')");
}

PyValuePtr to_dict(const std::map<std::string, at::Tensor>& tensors) {
  auto d = PyValue::new_dict();
  for (const auto& [k, v] : tensors) d->set(k, PyValue::of(v));
  return d;
}

}  // namespace

std::string format_name(CheckpointFormat format) {
  switch (format) {
    case CheckpointFormat::kNative:
      return "native";
    case CheckpointFormat::kPoseNet:
      return "posenet";
    case CheckpointFormat::kBearpaw:
      return "bearpaw";
    case CheckpointFormat::kCenterNet:
      return "centernet";
    case CheckpointFormat::kMMPose:
      return "mmpose";
    case CheckpointFormat::kCornerNet:
      return "cornernet";
  }
  return "?";
}

nlohmann::json options_to_json(const model::StackedHourglassOptions& o) {
  return {{"stacks", o.stacks()},       {"features", o.features()}, {"depth", o.depth()},
          {"residuals", o.residuals()}, {"joints", o.joints()},     {"stem1", o.stem1()},
          {"stem2", o.stem2()}};
}

model::StackedHourglassOptions options_from_json(const nlohmann::json& j) {
  TORCH_CHECK(j.is_object(), "architecture must be a JSON object, got ", runtime::json_text(j));
  model::StackedHourglassOptions o;
  for (const auto& [key, value] : j.items()) {
    TORCH_CHECK(value.is_number_integer(), "architecture key '", key, "' must be an integer, got ",
                runtime::json_text(value));
    const int64_t v = value.get<int64_t>();
    if (key == "stacks")
      o.stacks(v);
    else if (key == "features")
      o.features(v);
    else if (key == "depth")
      o.depth(v);
    else if (key == "residuals")
      o.residuals(v);
    else if (key == "joints")
      o.joints(v);
    else if (key == "stem1")
      o.stem1(v);
    else if (key == "stem2")
      o.stem2(v);
    else
      TORCH_CHECK(false, "unknown architecture key '", key, "'");
  }
  o.validate();
  return o;
}

std::map<std::string, at::Tensor> state_of(torch::nn::Module& model) {
  std::map<std::string, at::Tensor> state;
  for (const auto& p : model.named_parameters()) state.emplace(p.key(), p.value().detach().cpu());
  for (const auto& b : model.named_buffers()) state.emplace(b.key(), b.value().detach().cpu());
  return state;
}

void load_state(model::StackedHourglassImpl& model, const std::map<std::string, at::Tensor>& state,
                const std::string& source) {
  load_state_with(model, model.options.describe(), state, source,
                  [](const at::Tensor& t) { return t; });
}

model::StackedHourglass build_model_for(const model::StackedHourglassOptions& options,
                                        const std::map<std::string, at::Tensor>& state,
                                        const std::string& source) {
  options.validate();
  check_declared_size(options.parameter_count(), options.describe(), state, source);
  return model::StackedHourglass(options);
}

namespace {

void write_native(const std::string& path, const nlohmann::json& config, const nlohmann::json& meta,
                  const std::map<std::string, at::Tensor>& state,
                  const std::map<std::string, at::Tensor>& extra) {
  auto root = PyValue::new_dict();
  root->set("format", PyValue::of(std::string(kFormatTag)))
      .set("version", PyValue::of(kFormatVersion))
      .set("config", PyValue::of(runtime::json_text(config)))
      .set("meta", PyValue::of(runtime::json_text(meta)))
      .set("state_dict", to_dict(state))
      .set("extra", to_dict(extra));
  write_torch_file(path, *root);
}

constexpr const char* kLargeFamily = "large_hourglass";

bool is_large_family(const nlohmann::json& config) {
  const auto it = config.is_object() ? config.find("family") : config.end();
  return it != config.end() && it->is_string() && it->get<std::string>() == kLargeFamily;
}

bool is_native(const PyValue& root) {
  const PyValue* tag = root.is_dict() ? root.find("format") : nullptr;
  return tag != nullptr && tag->kind == PyValue::Kind::kString && tag->text == kFormatTag;
}

/// A native checkpoint's config and meta, and its state_dict value, once its tag and version are
/// checked.
struct NativeHeader {
  nlohmann::json config, meta;
  const PyValue* state = nullptr;
};

NativeHeader parse_native(const PyValue* root, const std::string& path) {
  TORCH_CHECK(root->is_dict(), "cannot read ", path, ": the file holds a ", root->type_name(),
              ", not a checkpoint dict");
  const auto& tag = field(*root, "format", PyValue::Kind::kString, path);
  TORCH_CHECK(tag.text == kFormatTag, "cannot read ", path, ": format tag is '", tag.text, "'");
  const auto& version = field(*root, "version", PyValue::Kind::kInt, path);
  TORCH_CHECK(version.integer <= kFormatVersion, "cannot read ", path, ": checkpoint version ",
              version.integer, " is newer than this build understands (", kFormatVersion,
              "); update hourglass");
  NativeHeader h;
  h.config = parse_json(field(*root, "config", PyValue::Kind::kString, path).text, "config", path);
  h.meta = parse_json(field(*root, "meta", PyValue::Kind::kString, path).text, "meta", path);
  h.state = &field(*root, "state_dict", PyValue::Kind::kDict, path);
  return h;
}

}  // namespace

void write_checkpoint(const std::string& path, const Checkpoint& ckpt) {
  write_native(path, options_to_json(ckpt.options), ckpt.meta, ckpt.state, ckpt.extra);
}

namespace {
/// Checks a native checkpoint's header and reads its options and meta into `ckpt`; returns its
/// state_dict value.
const PyValue& parse_header(const PyValue* root, const std::string& path, Checkpoint& ckpt) {
  auto header = parse_native(root, path);
  TORCH_CHECK(!is_large_family(header.config), "cannot read ", path,
              ": it holds a CornerNet/CenterNet hourglass", kLargeFamilyElsewhere);
  try {
    ckpt.options = options_from_json(header.config);
  } catch (const c10::Error& e) {
    TORCH_CHECK(false, "cannot read ", path, ": ", e.msg());
  }
  ckpt.meta = std::move(header.meta);
  return *header.state;
}

Checkpoint parse_checkpoint(const PyValue* root, const std::string& path) {
  Checkpoint ckpt;
  ckpt.state = tensor_entries(parse_header(root, path, ckpt));
  if (const PyValue* extra = root->find("extra")) ckpt.extra = tensor_entries(*extra);
  return ckpt;
}

}  // namespace

Checkpoint read_checkpoint(const std::string& path) {
  return parse_checkpoint(read_torch_file(path).get(), path);
}

void save_model(const std::string& path, model::StackedHourglassImpl& model,
                const nlohmann::json& meta) {
  Checkpoint ckpt;
  ckpt.options = model.options;
  ckpt.state = state_of(model);
  ckpt.meta = meta;
  write_checkpoint(path, ckpt);
}

LoadedModel load_model(const std::string& path) {
  if (is_safetensors_file(path)) return load_safetensors_model(path);
  // Tensor data is read only as it is copied into the model, one tensor at a time, and never for
  // what the model does not need (a training checkpoint's optimizer state): the peak is about one
  // copy of the weights, not three.
  const auto root = read_torch_file(path, TensorData::kDeferred);
  DeferredValues values;
  LoadedModel loaded;
  loaded.source = path;
  model::StackedHourglassOptions options;
  std::map<std::string, at::Tensor> state;
  if (is_native(*root)) {
    Checkpoint header;
    state = deferred_entries(parse_header(root.get(), path, header), values);
    options = header.options;
    loaded.meta = std::move(header.meta);
  } else {
    // The import renames tensors and reads their shapes only.
    auto imported = import_state_dict(deferred_entries(foreign_state(*root, path), values), path);
    loaded.format = imported.format;
    options = imported.options;
    state = std::move(imported.state);
  }
  loaded.model = build_model_for(options, state, path);
  load_state_with(*loaded.model, options.describe(), state, path, read_deferred(values));
  loaded.model->eval();
  return loaded;
}

nlohmann::json large_options_to_json(const model::LargeHourglassOptions& o) {
  nlohmann::json heads = nlohmann::json::array();
  for (const auto& h : o.heads()) heads.push_back({{"name", h.name}, {"channels", h.channels}});
  return {{"family", kLargeFamily},
          {"levels", o.levels()},
          {"dims", o.dims()},
          {"modules", o.modules()},
          {"stacks", o.stacks()},
          {"cnv_dim", o.cnv_dim()},
          {"stem", o.stem()},
          {"heads", heads},
          {"head_style", runtime::name_in(name_table(o.head_style()), o.head_style())}};
}

namespace {

int64_t integer_at(const nlohmann::json& j, const std::string& key) {
  TORCH_CHECK(j.contains(key), "architecture key '", key, "' is missing");
  TORCH_CHECK(j[key].is_number_integer(), "architecture key '", key, "' must be an integer, got ",
              runtime::json_text(j[key]));
  return j[key].get<int64_t>();
}

std::vector<int64_t> integers_at(const nlohmann::json& j, const std::string& key) {
  TORCH_CHECK(j.contains(key), "architecture key '", key, "' is missing");
  const auto& v = j[key];
  TORCH_CHECK(
      v.is_array() && v.size() <= 16 &&
          std::all_of(v.begin(), v.end(), [](const auto& e) { return e.is_number_integer(); }),
      "architecture key '", key, "' must be a list of at most 16 integers, got ",
      runtime::json_text(v));
  return v.get<std::vector<int64_t>>();
}

std::vector<model::HeadSpec> heads_at(const nlohmann::json& j) {
  TORCH_CHECK(j.contains("heads") && j["heads"].is_array(),
              "architecture key 'heads' must be a list of {\"name\", \"channels\"}");
  std::vector<model::HeadSpec> heads;
  for (const auto& h : j["heads"]) {
    TORCH_CHECK(h.is_object() && h.size() == 2 && h.contains("name") && h["name"].is_string() &&
                    h.contains("channels") && h["channels"].is_number_integer(),
                "architecture key 'heads': each head must be {\"name\": text, \"channels\": "
                "integer}, got ",
                runtime::json_text(h));
    heads.push_back({h["name"].get<std::string>(), h["channels"].get<int64_t>()});
  }
  return heads;
}

model::HeadStyle style_at(const nlohmann::json& j) {
  TORCH_CHECK(j.contains("head_style") && j["head_style"].is_string(),
              "architecture key 'head_style' must be ",
              runtime::names_listed(name_table(model::HeadStyle{})));
  try {
    return runtime::parse_in(name_table(model::HeadStyle{}), j["head_style"].get<std::string>(),
                             "architecture key 'head_style'");
  } catch (const std::invalid_argument& e) {
    TORCH_CHECK(false, e.what());
  }
}

}  // namespace

model::LargeHourglassOptions large_options_from_json(const nlohmann::json& j) {
  TORCH_CHECK(is_large_family(j), "architecture must be a JSON object with \"family\": \"",
              kLargeFamily, "\", got ", runtime::json_text(j));
  static const std::set<std::string> kKeys = {"family",  "levels", "dims",  "modules",   "stacks",
                                              "cnv_dim", "stem",   "heads", "head_style"};
  for (const auto& [key, value] : j.items())
    TORCH_CHECK(kKeys.count(key), "unknown architecture key '", key, "'");
  auto o = model::LargeHourglassOptions()
               .levels(integer_at(j, "levels"))
               .dims(integers_at(j, "dims"))
               .modules(integers_at(j, "modules"))
               .stacks(integer_at(j, "stacks"))
               .cnv_dim(integer_at(j, "cnv_dim"))
               .stem(integer_at(j, "stem"))
               .heads(heads_at(j))
               .head_style(style_at(j));
  o.validate();
  return o;
}

bool holds_large_hourglass(const std::string& path) {
  try {
    const auto root = read_torch_file(path, TensorData::kDeferred);
    if (is_native(*root)) return is_large_family(parse_native(root.get(), path).config);
    DeferredValues values;
    const auto state = without_prefixes(deferred_entries(foreign_state(*root, path), values));
    return is_centernet_state(state) || is_mmpose_hourglass_state(state);
  } catch (const c10::Error&) {
    return false;
  }
}

LoadedLargeHourglass load_large_hourglass(const std::string& path) {
  const auto root = read_torch_file(path, TensorData::kDeferred);
  DeferredValues values;
  LoadedLargeHourglass loaded;
  loaded.source = path;
  model::LargeHourglassOptions options;
  std::map<std::string, at::Tensor> state;
  if (is_native(*root)) {
    auto header = parse_native(root.get(), path);
    try {
      options = large_options_from_json(header.config);
    } catch (const c10::Error& e) {
      TORCH_CHECK(false, "cannot read ", path, " as a CornerNet/CenterNet hourglass: ", e.msg());
    }
    loaded.meta = std::move(header.meta);
    state = deferred_entries(*header.state, values);
  } else {
    state = without_prefixes(deferred_entries(foreign_state(*root, path), values));
    const bool mmpose = is_mmpose_hourglass_state(state);
    TORCH_CHECK(mmpose || is_centernet_state(state), "cannot import ", path,
                ": neither a CenterNet nor an MMPose hourglass checkpoint (it lacks "
                "pre.0.conv.weight and backbone.stem.0.conv.weight)");
    if (mmpose) state = from_mmpose(state, path);
    options = large_hourglass_options(state, path);
    loaded.format = mmpose ? CheckpointFormat::kMMPose
                    : options.head_style() == model::HeadStyle::kCornerNet
                        ? CheckpointFormat::kCornerNet
                        : CheckpointFormat::kCenterNet;
  }
  check_declared_size(options.parameter_count(), options.describe(), state, path);
  loaded.model = model::LargeHourglass(options);
  load_state_with(*loaded.model, options.describe(), state, path, read_deferred(values));
  loaded.model->eval();
  return loaded;
}

void save_large_hourglass(const std::string& path, model::LargeHourglassImpl& model,
                          const nlohmann::json& meta) {
  write_native(path, large_options_to_json(model.options), meta, state_of(model), {});
}

}  // namespace hg::io
