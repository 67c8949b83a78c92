#include "hg/io/checkpoint.h"
#include "hg/runtime/text.h"

#include "hg/data/json.h"
#include "hg/io/import_pytorch.h"
#include "hg/io/safetensors.h"
#include "hg/io/torch_file.h"
#include "hg/runtime/limits.h"
#include "load_state.h"

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

std::map<std::string, at::Tensor> state_of(model::StackedHourglassImpl& model) {
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

void write_checkpoint(const std::string& path, const Checkpoint& ckpt) {
  auto root = PyValue::new_dict();
  root->set("format", PyValue::of(std::string(kFormatTag)))
      .set("version", PyValue::of(kFormatVersion))
      .set("config", PyValue::of(runtime::json_text(options_to_json(ckpt.options))))
      .set("meta", PyValue::of(runtime::json_text(ckpt.meta)))
      .set("state_dict", to_dict(ckpt.state))
      .set("extra", to_dict(ckpt.extra));
  write_torch_file(path, *root);
}

namespace {
/// Checks a native checkpoint's header and reads its options and meta into `ckpt`; returns its
/// state_dict value.
const PyValue& parse_header(const PyValue* root, const std::string& path, Checkpoint& ckpt) {
  TORCH_CHECK(root->is_dict(), "cannot read ", path, ": the file holds a ", root->type_name(),
              ", not a checkpoint dict");
  const auto& tag = field(*root, "format", PyValue::Kind::kString, path);
  TORCH_CHECK(tag.text == kFormatTag, "cannot read ", path, ": format tag is '", tag.text, "'");
  const auto& version = field(*root, "version", PyValue::Kind::kInt, path);
  TORCH_CHECK(version.integer <= kFormatVersion, "cannot read ", path, ": checkpoint version ",
              version.integer, " is newer than this build understands (", kFormatVersion,
              "); update hourglass");
  const auto config =
      parse_json(field(*root, "config", PyValue::Kind::kString, path).text, "config", path);
  try {
    ckpt.options = options_from_json(config);
  } catch (const c10::Error& e) {
    TORCH_CHECK(false, "cannot read ", path, ": ", e.msg());
  }
  ckpt.meta = parse_json(field(*root, "meta", PyValue::Kind::kString, path).text, "meta", path);
  return field(*root, "state_dict", PyValue::Kind::kDict, path);
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
  const PyValue* tag = root->is_dict() ? root->find("format") : nullptr;
  if (tag != nullptr && tag->kind == PyValue::Kind::kString && tag->text == kFormatTag) {
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

}  // namespace hg::io
