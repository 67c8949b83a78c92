#pragma once
// Copying a state dict into a module, shared by the loaders of both model families (private to
// src/io).

#include "hg/io/torch_file.h"
#include "hg/runtime/limits.h"
#include "hg/runtime/text.h"

#include <torch/torch.h>

#include <map>
#include <set>
#include <string>
#include <unordered_map>

namespace hg::io {

/// The state dict inside a PyTorch training checkpoint, or the file itself when it is one.
inline const PyValue& foreign_state(const PyValue& root, const std::string& path) {
  TORCH_CHECK(root.is_dict(), "cannot read ", path, ": the file holds a ", root.type_name(),
              ", not a checkpoint dict");
  if (const PyValue* sd = root.find("state_dict")) {
    TORCH_CHECK(sd->is_dict(), "cannot read ", path, ": 'state_dict' holds a ", sd->type_name());
    return *sd;
  }
  return root;
}

/// Where each tensor of a deferred read comes from, by its TensorImpl (which survives renaming).
using DeferredValues = std::unordered_map<const c10::TensorImpl*, const PyValue*>;

/// A dict's string-keyed tensors as read (meta tensors when deferred), each also recorded in
/// `values`.
inline std::map<std::string, at::Tensor> deferred_entries(const PyValue& dict,
                                                          DeferredValues& values) {
  std::map<std::string, at::Tensor> out;
  for (const auto& [k, v] : dict.dict)
    if (k->kind == PyValue::Kind::kString && v->kind == PyValue::Kind::kTensor) {
      out.emplace(k->text, v->tensor);
      values.emplace(v->tensor.unsafeGetTensorImpl(), v.get());
    }
  return out;
}

/// The `get` of load_state_with for tensors listed in `values`: reads their data now.
inline auto read_deferred(const DeferredValues& values) {
  return [&values](const at::Tensor& t) {
    const auto it = values.find(t.unsafeGetTensorImpl());
    return it == values.end() ? t : load_tensor(*it->second);
  };
}

/// Copies `state` into `model` (its architecture described by `description` in messages), where
/// `get(t)` gives the data of `state`'s tensor t, called only when it is copied in (so that
/// deferred tensors are read, and held, one at a time). Every parameter and buffer must be
/// present with its shape, except batch norm's num_batches_tracked; extra tensors are an error.
template <typename Get>
void load_state_with(torch::nn::Module& model, const std::string& description,
                     const std::map<std::string, at::Tensor>& state, const std::string& source,
                     Get get) {
  torch::NoGradGuard no_grad;
  std::set<std::string> used;
  auto assign = [&](const std::string& name, at::Tensor& target) {
    auto it = state.find(name);
    if (it == state.end()) {
      TORCH_CHECK(
          name.size() >= 19 && name.compare(name.size() - 19, 19, "num_batches_tracked") == 0,
          "cannot load ", source, ": no tensor for '", name, "' (", description, ")");
      return;
    }
    const at::Tensor& shape = it->second;  // a meta tensor if deferred: shape only
    TORCH_CHECK(shape.sizes() == target.sizes(), "cannot load ", source, ": tensor '", name,
                "' has shape ", shape.sizes(), ", the architecture (", description, ") needs ",
                target.sizes());
    const at::Tensor data = get(it->second);
    if (data.is_floating_point()) {
      const int64_t bad = data.numel() - torch::isfinite(data).sum().item<int64_t>();
      TORCH_CHECK(bad == 0, "cannot load ", source, ": tensor '", name, "' holds ", bad,
                  " NaN or infinite values (of ", data.numel(),
                  "): the checkpoint is damaged or its training diverged; use another one");
    }
    target.copy_(data);
    used.insert(name);
  };
  for (auto& p : model.named_parameters()) assign(p.key(), p.value());
  for (auto& b : model.named_buffers()) assign(b.key(), b.value());
  for (const auto& [name, t] : state)
    TORCH_CHECK(used.count(name), "cannot load ", source, ": unexpected tensor '", name,
                "' that the architecture (", description, ") does not have");
}

/// Throws, naming `source`, when an architecture of `declared` parameters exceeds
/// limits::kMaxParameters or the values `state` holds (shapes only: no data is read), before it
/// is built: a small file must not make the loader allocate gigabytes.
inline void check_declared_size(int64_t declared, const std::string& description,
                                const std::map<std::string, at::Tensor>& state,
                                const std::string& source) {
  TORCH_CHECK(declared <= limits::kMaxParameters, "cannot load ", source, ": its architecture (",
              description, ") has ", runtime::with_commas(declared),
              " parameters, more than the limit of ", runtime::with_commas(limits::kMaxParameters));
  int64_t present = 0;
  for (const auto& [name, t] : state) present += t.numel();
  TORCH_CHECK(present >= declared, "cannot load ", source, ": its architecture (", description,
              ") has ", runtime::with_commas(declared), " parameters, but the file holds ",
              runtime::with_commas(present),
              " values in all: the architecture it declares is not that of its tensors");
}

}  // namespace hg::io
