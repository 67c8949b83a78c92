#pragma once
/// Reading and writing PyTorch's `torch.save` zip files without executing anything.
///
/// LibTorch 1.13's `torch::pickle_load` cannot read a `state_dict()` (it turns every
/// `collections.OrderedDict` into None), and a general unpickler would run whatever callable a
/// file names. The reader here is a restricted unpickler: it builds only dicts, lists, tuples,
/// numbers, strings, bytes and tensors, and any global outside the short list a checkpoint needs
/// (OrderedDict, the tensor and parameter rebuilders, the typed storages) is an error, never a
/// call.

#include <ATen/Tensor.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace hg::io {

struct PyValue;
using PyValuePtr = std::shared_ptr<PyValue>;
/// Where the data of a tensor read with TensorData::kDeferred is: its file and record.
struct StorageSource;

/// A Python value as read from a checkpoint's pickle.
struct PyValue {
  enum class Kind { kNone, kBool, kInt, kFloat, kString, kBytes, kTensor, kList, kTuple, kDict };
  Kind kind = Kind::kNone;
  bool boolean = false;
  int64_t integer = 0;
  double real = 0;
  std::string text;  ///< kString and kBytes
  /// kTensor: on the CPU; a meta tensor of the right shape, dtype and strides if its data was
  /// deferred (then `source` says where the data is: read it with load_tensor)
  at::Tensor tensor;
  std::shared_ptr<const StorageSource> source;
  std::vector<PyValuePtr> items;                        ///< kList and kTuple
  std::vector<std::pair<PyValuePtr, PyValuePtr>> dict;  ///< kDict, in insertion order

  bool is_dict() const { return kind == Kind::kDict; }
  /// The value under string key `key` of a dict, or nullptr if absent (or not a dict).
  const PyValue* find(const std::string& key) const;
  /// Keys of a dict that are strings, in order.
  std::vector<std::string> string_keys() const;
  /// Python-like name of the kind ("dict", "tensor", ...), for error messages.
  std::string type_name() const;
  /// Adds (or appends, keys are not de-duplicated) `key: value` to a dict; returns *this.
  PyValue& set(const std::string& key, PyValuePtr value);

  static PyValuePtr none();
  static PyValuePtr of(bool b);
  static PyValuePtr of(int64_t i);
  static PyValuePtr of(double d);
  static PyValuePtr of(const std::string& s);
  static PyValuePtr of(const at::Tensor& t);
  static PyValuePtr new_dict();
  static PyValuePtr new_list(std::vector<PyValuePtr> items = {});
};

/// Reads a `torch.save` zip file (any archive name). Throws, naming `path`, if the file is missing,
/// truncated, not a zip checkpoint, or its pickle uses an opcode or global a checkpoint never
/// needs.
/// How read_torch_file treats tensor data.
enum class TensorData {
  kRead,      ///< read every tensor now
  kDeferred,  ///< read none: tensors are meta tensors until load_tensor reads them (a loader that
              ///< needs only some of them, e.g. a model's weights without the optimizer state,
              ///< then holds only those, one at a time)
};
PyValuePtr read_torch_file(const std::string& path, TensorData data = TensorData::kRead);
/// The CPU tensor of a kTensor value, read from its file now if its data was deferred (each call
/// reads it again). Throws naming the file and record if the record is missing or short.
at::Tensor load_tensor(const PyValue& value);

/// The string-keyed tensors of a dict value (non-tensor entries are skipped), in key order, read
/// now if deferred.
std::map<std::string, at::Tensor> tensor_entries(const PyValue& dict);

/// Writes `value` as `torch.save` would (zip archive, pickle protocol 2, tensors as
/// `_rebuild_tensor_v2` of typed storages), so that Python's `torch.load` reads it even with
/// `weights_only=True`, the default since PyTorch 2.6. LibTorch's own `torch::pickle_save` tags
/// typed containers with `torch.jit._pickle` globals that such a load refuses. Atomic: a
/// temporary file beside `path` is renamed over it.
void write_torch_file(const std::string& path, const PyValue& value);

/// Writes a plain dict of named tensors (e.g. {"output": N×S×J×h×w}) as write_torch_file does.
void write_tensor_dict(const std::string& path, const std::map<std::string, at::Tensor>& tensors);

}  // namespace hg::io
