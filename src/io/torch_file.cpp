#include "hg/io/torch_file.h"

#include "hg/io/atomic_file.h"
#include "hg/runtime/limits.h"
#include "zip_index.h"

#include <caffe2/serialize/inline_container.h>
#include <torch/torch.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <unordered_map>

#include <unistd.h>

namespace hg::io {
namespace {

PyValuePtr make(PyValue::Kind kind) {
  auto v = std::make_shared<PyValue>();
  v->kind = kind;
  return v;
}

using ZipIndex = std::map<std::string, ZipEntry>;

/// Throws unless the index has `record` with at least `numel` elements of `dtype` (checked before
/// anything is read or allocated for it); returns their size in bytes.
size_t storage_bytes(const ZipIndex& index, const std::string& path, const std::string& record,
                     c10::ScalarType dtype, int64_t numel) {
  const auto entry = index.find(record);
  TORCH_CHECK(entry != index.end(), "cannot read ", path, ": the archive lacks the tensor record '",
              record, "'");
  uint64_t want = 0;
  TORCH_CHECK(
      numel >= 0 &&
          !__builtin_mul_overflow(static_cast<uint64_t>(numel), c10::elementSize(dtype), &want) &&
          want <= entry->second.size,
      "cannot read ", path, ": record '", record, "' holds ", entry->second.size,
      " bytes, but the pickle says ", numel, " elements of ", dtype);
  return want;
}

/// A storage record's data as a flat CPU tensor of `numel` elements of `dtype`, its CRC-32
/// verified.
at::Tensor read_storage(caffe2::serialize::PyTorchStreamReader& zip, const ZipIndex& index,
                        const std::string& path, const std::string& record, c10::ScalarType dtype,
                        int64_t numel) {
  const size_t want = storage_bytes(index, path, record, dtype, numel);
  TORCH_CHECK(zip.hasRecord(record), "cannot read ", path,
              ": the archive lacks the tensor record '", record, "'");
  at::DataPtr ptr;
  size_t bytes = 0;
  std::tie(ptr, bytes) = zip.getRecord(record);
  check_zip_record(index, path, record, ptr.get(), bytes);
  TORCH_CHECK(bytes >= want, "cannot read ", path, ": record '", record, "' holds ", bytes,
              " bytes, expected ", want);
  const auto options = torch::TensorOptions().dtype(dtype);
  if (want == 0) return torch::empty({0}, options);
  // The tensor takes over the record's buffer (CPU-allocator memory, aligned as any tensor's)
  // instead of a copy of it: loading then needs no second buffer per tensor.
  auto* owner = new at::DataPtr(std::move(ptr));
  return torch::from_blob(
      owner->get(), {numel}, [owner](void*) { delete owner; }, options);
}

}  // namespace

struct StorageSource {
  std::shared_ptr<caffe2::serialize::PyTorchStreamReader> zip;
  std::shared_ptr<const ZipIndex> index;
  std::string path, record;
  c10::ScalarType dtype;
  int64_t numel;
};

namespace {

// Values that exist only while unpickling: a named global (a callable we know) and a storage.
struct Global {
  std::string name;  // "module.name"
};

// The globals a checkpoint legitimately names. Anything else is refused at GLOBAL time.
const std::unordered_map<std::string, c10::ScalarType>& storage_types() {
  static const std::unordered_map<std::string, c10::ScalarType> types = {
      {"torch.FloatStorage", c10::kFloat}, {"torch.DoubleStorage", c10::kDouble},
      {"torch.HalfStorage", c10::kHalf},   {"torch.BFloat16Storage", c10::kBFloat16},
      {"torch.LongStorage", c10::kLong},   {"torch.IntStorage", c10::kInt},
      {"torch.ShortStorage", c10::kShort}, {"torch.CharStorage", c10::kChar},
      {"torch.ByteStorage", c10::kByte},   {"torch.BoolStorage", c10::kBool}};
  return types;
}

bool allowed_global(const std::string& name) {
  return name == "collections.OrderedDict" || name == "torch._utils._rebuild_tensor_v2" ||
         name == "torch._utils._rebuild_parameter" || storage_types().count(name) > 0;
}

class Unpickler {
 public:
  Unpickler(const std::string& path, std::shared_ptr<caffe2::serialize::PyTorchStreamReader> zip,
            std::shared_ptr<const ZipIndex> index, bool defer, const char* data, size_t size)
      : path_(path),
        zip_(std::move(zip)),
        index_(std::move(index)),
        defer_(defer),
        p_(data),
        end_(data + size),
        begin_(data) {}

  PyValuePtr run() {
    while (true) {
      TORCH_CHECK(p_ < end_, fail("the pickle ends before its STOP opcode (truncated?)"));
      const auto op = static_cast<uint8_t>(*p_++);
      if (op == '.') break;
      step(op);
    }
    TORCH_CHECK(stack_.size() == 1, fail("the pickle leaves ", stack_.size(), " values"));
    auto v = value(stack_.back());
    return v;
  }

 private:
  // The stack holds either a Python value, a global or a storage (a flat tensor).
  struct Item {
    PyValuePtr value;
    std::shared_ptr<Global> global;
    std::shared_ptr<at::Tensor> storage;
  };

  template <typename... Args>
  std::string fail(const Args&... args) const {
    return c10::str("cannot read ", path_, ": ", args..., " (byte ", p_ - begin_,
                    " of the pickle)");
  }

  const char* take(size_t n) {
    TORCH_CHECK(static_cast<size_t>(end_ - p_) >= n, fail("the pickle is truncated"));
    const char* at = p_;
    p_ += n;
    return at;
  }
  template <typename T>
  T read() {
    T v;
    std::memcpy(&v, take(sizeof(T)), sizeof(T));
    return v;
  }
  std::string read_line() {
    const char* nl = static_cast<const char*>(std::memchr(p_, '\n', end_ - p_));
    TORCH_CHECK(nl != nullptr, fail("the pickle is truncated inside a GLOBAL"));
    std::string s(p_, nl);
    p_ = nl + 1;
    return s;
  }

  Item pop() {
    TORCH_CHECK(!stack_.empty() && (marks_.empty() || stack_.size() > marks_.back()),
                fail("stack underflow: the pickle is malformed"));
    Item it = std::move(stack_.back());
    stack_.pop_back();
    return it;
  }
  std::vector<Item> pop_to_mark() {
    TORCH_CHECK(!marks_.empty(), fail("missing MARK: the pickle is malformed"));
    const size_t m = marks_.back();
    marks_.pop_back();
    std::vector<Item> items(std::make_move_iterator(stack_.begin() + m),
                            std::make_move_iterator(stack_.end()));
    stack_.resize(m);
    return items;
  }
  PyValuePtr value(const Item& it) const {
    TORCH_CHECK(it.value != nullptr,
                fail("a ", it.global ? "global" : "storage", " is used where a value is expected"));
    return it.value;
  }
  void push(PyValuePtr v) { stack_.push_back(Item{std::move(v), nullptr, nullptr}); }

  // Lists, tuples and dicts that hold something or are held: their height (levels of containers
  // inside them, counting themselves) and whether another container holds them. Each is kept
  // alive here so that its address stays its own until the end.
  struct Node {
    PyValuePtr keep;
    int height = 1;
    bool held = false;
  };

  static bool is_container(const PyValue& v) {
    return v.kind == PyValue::Kind::kList || v.kind == PyValue::Kind::kTuple ||
           v.kind == PyValue::Kind::kDict;
  }
  Node& node(const PyValuePtr& v) { return nodes_.try_emplace(v.get(), Node{v}).first->second; }
  // Records that `parent` now holds `child`. Containers are filled before they are put in another
  // one in every pickle torch.save writes; refusing to fill one afterwards keeps each height exact
  // (so the nesting limit holds, and destroying the result recurses at most that deep) and rules
  // out cycles, which would never be freed.
  void adopt(const PyValuePtr& parent, const PyValuePtr& child) {
    if (!is_container(*child)) {
      node(parent);
      return;
    }
    TORCH_CHECK(parent != child, fail("a list or dict holds itself (a recursive structure, which "
                                      "a checkpoint never holds)"));
    Node& c = node(child);
    c.held = true;
    const int height = c.height + 1;
    Node& p = node(parent);
    TORCH_CHECK(!p.held, fail("a list or dict is modified after it was put in another one (a "
                              "recursive structure, which a checkpoint never holds)"));
    TORCH_CHECK(height <= limits::kMaxPickleDepth,
                fail("lists, tuples and dicts nested deeper than ", limits::kMaxPickleDepth,
                     " levels (the limit; a checkpoint nests about 5): not a checkpoint"));
    p.height = std::max(p.height, height);
  }

  PyValuePtr tuple_of(std::vector<Item> items) {
    auto t = make(PyValue::Kind::kTuple);
    for (auto& it : items) {
      if (it.value) adopt(t, it.value);
      if (it.storage) {
        // A storage travels inside the rebuild call's argument tuple; keep it as a tensor.
        auto v = make(PyValue::Kind::kTensor);
        v->tensor = *it.storage;
        v->text = "storage";
        if (auto s = sources_.find(it.storage->unsafeGetTensorImpl()); s != sources_.end())
          v->source = s->second;
        t->items.push_back(v);
      } else if (it.global) {
        // A storage type inside a persistent id; load_storage maps the name to a dtype.
        auto v = make(PyValue::Kind::kString);
        v->text = it.global->name;
        t->items.push_back(v);
      } else {
        t->items.push_back(value(it));
      }
    }
    return t;
  }

  void set_items(const PyValuePtr& target, std::vector<Item> items) {
    TORCH_CHECK(target->kind == PyValue::Kind::kDict,
                fail("SETITEM on a ", target->type_name(), ", not a dict"));
    TORCH_CHECK(items.size() % 2 == 0, fail("SETITEMS with an odd number of values"));
    for (size_t i = 0; i < items.size(); i += 2) {
      const auto key = value(items[i]), val = value(items[i + 1]);
      adopt(target, key);
      adopt(target, val);
      target->dict.emplace_back(key, val);
    }
  }
  void append_items(const PyValuePtr& target, std::vector<Item> items) {
    TORCH_CHECK(target->kind == PyValue::Kind::kList,
                fail("APPEND on a ", target->type_name(), ", not a list"));
    for (auto& it : items) {
      const auto v = value(it);
      adopt(target, v);
      target->items.push_back(v);
    }
  }

  void global(const std::string& module, const std::string& name) {
    const std::string full = module + "." + name;
    TORCH_CHECK(allowed_global(full),
                fail("the pickle names the global '", full,
                     "', which a checkpoint never needs; refusing to load it (only dicts, lists, "
                     "numbers, strings and tensors are read)"));
    stack_.push_back(Item{nullptr, std::make_shared<Global>(Global{full}), nullptr});
  }

  at::Tensor load_storage(const PyValue& pid) {
    TORCH_CHECK(
        pid.kind == PyValue::Kind::kTuple && pid.items.size() >= 5 &&
            pid.items[0]->kind == PyValue::Kind::kString && pid.items[0]->text == "storage" &&
            pid.items[1]->kind == PyValue::Kind::kString &&
            pid.items[2]->kind == PyValue::Kind::kString &&
            pid.items[4]->kind == PyValue::Kind::kInt,
        fail("unsupported persistent id (expected ('storage', type, key, location, numel))"));
    const std::string& key = pid.items[2]->text;
    auto cached = storages_.find(key);
    if (cached != storages_.end()) return cached->second;
    const auto type = storage_types().find(pid.items[1]->text);
    TORCH_CHECK(type != storage_types().end(),
                fail("unknown storage type '", pid.items[1]->text, "'"));
    const auto dtype = type->second;
    const int64_t numel = pid.items[4]->integer;
    const std::string record = "data/" + key;
    TORCH_CHECK(numel >= 0, fail("a storage of ", numel, " elements"));
    storage_bytes(*index_, path_, record, dtype, numel);
    at::Tensor t;
    if (defer_) {
      t = torch::empty({numel}, torch::TensorOptions().dtype(dtype).device(at::kMeta));
      sources_.emplace(t.unsafeGetTensorImpl(), std::make_shared<const StorageSource>(StorageSource{
                                                    zip_, index_, path_, record, dtype, numel}));
    } else {
      t = read_storage(*zip_, *index_, path_, record, dtype, numel);
    }
    storages_.emplace(key, t);
    return t;
  }

  PyValuePtr rebuild_tensor(const PyValue& args) {
    TORCH_CHECK(args.items.size() >= 4, fail("_rebuild_tensor_v2 with too few arguments"));
    const auto& storage = args.items[0];
    TORCH_CHECK(storage->kind == PyValue::Kind::kTensor && storage->text == "storage",
                fail("_rebuild_tensor_v2 without a storage"));
    auto ints = [&](const PyValue& t, const char* what) {
      TORCH_CHECK(t.kind == PyValue::Kind::kTuple, fail("tensor ", what, " is not a tuple"));
      std::vector<int64_t> v;
      for (const auto& x : t.items) {
        TORCH_CHECK(x->kind == PyValue::Kind::kInt, fail("tensor ", what, " holds a non-integer"));
        v.push_back(x->integer);
      }
      return v;
    };
    const auto size = ints(*args.items[2], "size");
    const auto stride = ints(*args.items[3], "stride");
    TORCH_CHECK(size.size() == stride.size(), fail("tensor size and stride differ in length"));
    TORCH_CHECK(
        static_cast<int64_t>(size.size()) <= limits::kMaxTensorRank,
        fail("a tensor of ", size.size(), " dimensions (at most ", limits::kMaxTensorRank, ")"));
    TORCH_CHECK(args.items[1]->kind == PyValue::Kind::kInt && args.items[1]->integer >= 0,
                fail("a tensor's storage offset is not a non-negative integer"));
    const int64_t offset = args.items[1]->integer;
    bool empty = false;
    for (size_t i = 0; i < size.size(); ++i) {
      TORCH_CHECK(size[i] >= 0 && stride[i] >= 0,
                  fail("a tensor of size ", c10::IntArrayRef(size), " and stride ",
                       c10::IntArrayRef(stride), ": negative values"));
      empty = empty || size[i] == 0;
    }
    // The last element's index, without wrapping: any overflow is past the storage anyway.
    int64_t last = offset, numel = 1;
    bool wraps = false;
    for (size_t i = 0; i < size.size(); ++i) {
      int64_t step = 0;
      if (size[i] > 0)
        wraps = wraps || __builtin_mul_overflow(size[i] - 1, stride[i], &step) ||
                __builtin_add_overflow(last, step, &last);
      wraps = wraps || __builtin_mul_overflow(numel, size[i], &numel);
    }
    const auto& flat = storage->tensor;
    TORCH_CHECK(empty || (!wraps && last < flat.numel()),
                fail("a tensor reaches past the end of its storage"));
    // A view repeating elements (stride 0) could claim any number of them; parameters never do.
    TORCH_CHECK(empty || numel <= flat.numel(),
                fail("a tensor of ", numel, " elements over a storage of ", flat.numel()));
    auto v = make(PyValue::Kind::kTensor);
    v->tensor = empty ? torch::empty(size, flat.options()) : flat.as_strided(size, stride, offset);
    v->source = storage->source;
    return v;
  }

  PyValuePtr reduce(const Global& g, const PyValue& args) {
    if (g.name == "collections.OrderedDict") {
      TORCH_CHECK(args.items.empty(), fail("OrderedDict built from arguments is not supported"));
      return make(PyValue::Kind::kDict);
    }
    if (g.name == "torch._utils._rebuild_tensor_v2") return rebuild_tensor(args);
    if (g.name == "torch._utils._rebuild_parameter") {
      TORCH_CHECK(!args.items.empty() && args.items[0]->kind == PyValue::Kind::kTensor,
                  fail("_rebuild_parameter without a tensor"));
      return args.items[0];
    }
    TORCH_CHECK(false, fail("the global '", g.name, "' cannot be called"));
  }

  void step(uint8_t op) {
    switch (op) {
      case 0x80:
        take(1);
        break;  // PROTO
      case 0x95:
        take(8);
        break;  // FRAME
      case '(':
        marks_.push_back(stack_.size());
        break;
      case '}':
        push(make(PyValue::Kind::kDict));
        break;
      case ']':
        push(make(PyValue::Kind::kList));
        break;
      case ')':
        push(make(PyValue::Kind::kTuple));
        break;
      case 'N':
        push(make(PyValue::Kind::kNone));
        break;
      case 0x88:
      case 0x89: {
        auto v = make(PyValue::Kind::kBool);
        v->boolean = op == 0x88;
        push(v);
        break;
      }
      case 'J':
        push_int(read<int32_t>());
        break;
      case 'K':
        push_int(read<uint8_t>());
        break;
      case 'M':
        push_int(read<uint16_t>());
        break;
      case 0x8a: {  // LONG1: little-endian two's complement of n bytes
        const uint8_t n = read<uint8_t>();
        TORCH_CHECK(n <= 8, fail("integer of ", int(n), " bytes is too large"));
        const char* b = take(n);
        uint64_t u = 0;
        for (int i = 0; i < n; ++i) u |= uint64_t(uint8_t(b[i])) << (8 * i);
        if (n > 0 && n < 8 && (uint8_t(b[n - 1]) & 0x80)) u |= ~uint64_t(0) << (8 * n);
        push_int(static_cast<int64_t>(u));
        break;
      }
      case 'G': {  // BINFLOAT: big-endian double
        const char* b = take(8);
        uint64_t u = 0;
        for (int i = 0; i < 8; ++i) u = (u << 8) | uint8_t(b[i]);
        auto v = make(PyValue::Kind::kFloat);
        std::memcpy(&v->real, &u, 8);
        push(v);
        break;
      }
      case 'X':
        push_text(PyValue::Kind::kString, read<uint32_t>());
        break;
      case 0x8c:
        push_text(PyValue::Kind::kString, read<uint8_t>());
        break;
      case 0x8d:
        push_text(PyValue::Kind::kString, read<uint64_t>());
        break;
      case 'B':
        push_text(PyValue::Kind::kBytes, read<uint32_t>());
        break;
      case 'C':
        push_text(PyValue::Kind::kBytes, read<uint8_t>());
        break;
      case 't': {
        push(tuple_of(pop_to_mark()));
        break;
      }
      case 0x85:
      case 0x86:
      case 0x87: {
        const size_t n = op - 0x84;
        std::vector<Item> items(n);
        for (size_t i = n; i-- > 0;) items[i] = pop();
        push(tuple_of(std::move(items)));
        break;
      }
      case 'q':
        memo_[read<uint8_t>()] = stack_top();
        break;
      case 'r':
        memo_[read<uint32_t>()] = stack_top();
        break;
      case 0x94:
        memo_[memo_.size()] = stack_top();
        break;  // MEMOIZE
      case 'h':
        stack_.push_back(memo_get(read<uint8_t>()));
        break;
      case 'j':
        stack_.push_back(memo_get(read<uint32_t>()));
        break;
      case 'a': {
        auto v = pop();
        append_items(value(stack_top()), {std::move(v)});
        break;
      }
      case 'e': {
        auto items = pop_to_mark();
        append_items(value(stack_top()), std::move(items));
        break;
      }
      case 's': {
        auto val = pop();
        auto key = pop();
        set_items(value(stack_top()), {std::move(key), std::move(val)});
        break;
      }
      case 'u': {
        auto items = pop_to_mark();
        set_items(value(stack_top()), std::move(items));
        break;
      }
      case 'c': {
        const auto module = read_line();
        const auto name = read_line();
        global(module, name);
        break;
      }
      case 0x93: {  // STACK_GLOBAL
        auto name = value(pop());
        auto module = value(pop());
        global(module->text, name->text);
        break;
      }
      case 'R': {
        auto args = value(pop());
        auto callable = pop();
        TORCH_CHECK(callable.global != nullptr, fail("REDUCE on something that is not a global"));
        TORCH_CHECK(args->kind == PyValue::Kind::kTuple, fail("REDUCE without an argument tuple"));
        push(reduce(*callable.global, *args));
        break;
      }
      case 'b': {  // BUILD: state of an OrderedDict (_metadata) or a tensor; not needed
        pop();
        const auto& target = stack_top();
        TORCH_CHECK(target.value != nullptr && (target.value->kind == PyValue::Kind::kDict ||
                                                target.value->kind == PyValue::Kind::kTensor),
                    fail("BUILD on something that is neither a dict nor a tensor"));
        break;
      }
      case 'Q': {  // BINPERSID
        auto pid = value(pop());
        TORCH_CHECK(pid->kind == PyValue::Kind::kTuple && pid->items.size() >= 5,
                    fail("unsupported persistent id"));
        stack_.push_back(Item{nullptr, nullptr, std::make_shared<at::Tensor>(load_storage(*pid))});
        break;
      }
      case '0':
        pop();
        break;
      case '1':
        pop_to_mark();
        break;
      case '2':
        stack_.push_back(stack_top());
        break;
      default:
        TORCH_CHECK(false, fail("unsupported pickle opcode 0x", c10::str(std::hex, int(op)),
                                ": not a checkpoint written by torch.save"));
    }
  }

  const Item& stack_top() const {
    TORCH_CHECK(!stack_.empty(), fail("empty stack: the pickle is malformed"));
    return stack_.back();
  }
  Item memo_get(size_t key) const {
    auto it = memo_.find(key);
    TORCH_CHECK(it != memo_.end(), fail("memo entry ", key, " is read before it is written"));
    return it->second;
  }
  void push_int(int64_t i) {
    auto v = make(PyValue::Kind::kInt);
    v->integer = i;
    push(v);
  }
  void push_text(PyValue::Kind kind, uint64_t n) {
    auto v = make(kind);
    v->text.assign(take(n), n);
    push(v);
  }

  const std::string& path_;
  std::shared_ptr<caffe2::serialize::PyTorchStreamReader> zip_;
  std::shared_ptr<const ZipIndex> index_;
  bool defer_;
  const char* p_;
  const char* end_;
  const char* begin_;
  std::vector<Item> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<size_t, Item> memo_;
  std::unordered_map<std::string, at::Tensor> storages_;
  std::unordered_map<const c10::TensorImpl*, std::shared_ptr<const StorageSource>> sources_;
  std::unordered_map<const PyValue*, Node> nodes_;
};

std::string sniff_format(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  TORCH_CHECK(in.good(), "cannot read ", path, ": ", std::strerror(errno));
  char head[4] = {0, 0, 0, 0};
  in.read(head, 4);
  TORCH_CHECK(in.gcount() == 4, "cannot read ", path, ": the file is empty or truncated");
  if (head[0] == 'P' && head[1] == 'K') return "zip";
  if (uint8_t(head[0]) == 0x80) return "legacy";
  return "other";
}

}  // namespace

const PyValue* PyValue::find(const std::string& key) const {
  for (const auto& [k, v] : dict)
    if (k->kind == Kind::kString && k->text == key) return v.get();
  return nullptr;
}

std::vector<std::string> PyValue::string_keys() const {
  std::vector<std::string> keys;
  for (const auto& [k, v] : dict)
    if (k->kind == Kind::kString) keys.push_back(k->text);
  return keys;
}

std::string PyValue::type_name() const {
  switch (kind) {
    case Kind::kNone:
      return "None";
    case Kind::kBool:
      return "bool";
    case Kind::kInt:
      return "int";
    case Kind::kFloat:
      return "float";
    case Kind::kString:
      return "str";
    case Kind::kBytes:
      return "bytes";
    case Kind::kTensor:
      return "tensor";
    case Kind::kList:
      return "list";
    case Kind::kTuple:
      return "tuple";
    case Kind::kDict:
      return "dict";
  }
  return "?";
}

PyValuePtr read_torch_file(const std::string& path, TensorData data_mode) {
  const auto format = sniff_format(path);
  TORCH_CHECK(format != "legacy", "cannot read ", path,
              ": it is in PyTorch's legacy (pre-1.6) format; re-save it in Python with "
              "torch.save(torch.load(f), f2) to get the zip format");
  TORCH_CHECK(format == "zip", "cannot read ", path,
              ": not a PyTorch checkpoint (torch.save zip file) nor a hourglass checkpoint");
  // Our own reading of the directory first: it bounds every record before LibTorch's reader
  // allocates for one.
  const auto index = std::make_shared<const ZipIndex>(read_zip_index(path));
  // LibTorch 1.13's reader leaks its miniz state when its constructor throws (found by
  // fuzz_torch_file): what it requires is checked here first.
  TORCH_CHECK(index->count("version") > 0, "cannot read ", path,
              ": the zip archive has no 'version' record, so torch.save did not write it");
  std::shared_ptr<caffe2::serialize::PyTorchStreamReader> zip;
  try {
    zip = std::make_shared<caffe2::serialize::PyTorchStreamReader>(path);
  } catch (const c10::Error& e) {
    TORCH_CHECK(false, "cannot read ", path, ": the zip archive is damaged or truncated (", e.msg(),
                ")");
  }
  TORCH_CHECK(zip->hasRecord("data.pkl"), "cannot read ", path,
              ": the archive has no data.pkl, so it was not written by torch.save");
  TORCH_CHECK(index->count("data.pkl") > 0, "cannot read ", path,
              ": the archive has no data.pkl, so it was not written by torch.save");
  at::DataPtr data;
  size_t size = 0;
  try {
    std::tie(data, size) = zip->getRecord("data.pkl");
  } catch (const c10::Error& e) {
    TORCH_CHECK(false, "cannot read ", path, ": ", e.msg());
  }
  check_zip_record(*index, path, "data.pkl", data.get(), size);
  Unpickler unpickler(path, zip, index, data_mode == TensorData::kDeferred,
                      static_cast<const char*>(data.get()), size);
  try {
    return unpickler.run();
  } catch (const c10::Error& e) {
    // Records of a truncated archive fail inside the zip reader; say which file it was.
    const std::string msg = e.msg();
    if (msg.rfind("cannot read ", 0) == 0) throw;
    TORCH_CHECK(false, "cannot read ", path, ": ", msg);
  }
}

PyValue& PyValue::set(const std::string& key, PyValuePtr value) {
  TORCH_CHECK(kind == Kind::kDict, "set() on a ", type_name(), ", not a dict");
  dict.emplace_back(of(key), std::move(value));
  return *this;
}

PyValuePtr PyValue::none() {
  return make(Kind::kNone);
}
PyValuePtr PyValue::of(bool b) {
  auto v = make(Kind::kBool);
  v->boolean = b;
  return v;
}
PyValuePtr PyValue::of(int64_t i) {
  auto v = make(Kind::kInt);
  v->integer = i;
  return v;
}
PyValuePtr PyValue::of(double d) {
  auto v = make(Kind::kFloat);
  v->real = d;
  return v;
}
PyValuePtr PyValue::of(const std::string& s) {
  auto v = make(Kind::kString);
  v->text = s;
  return v;
}
PyValuePtr PyValue::of(const at::Tensor& t) {
  auto v = make(Kind::kTensor);
  v->tensor = t;
  return v;
}
PyValuePtr PyValue::new_dict() {
  return make(Kind::kDict);
}
PyValuePtr PyValue::new_list(std::vector<PyValuePtr> items) {
  auto v = make(Kind::kList);
  v->items = std::move(items);
  return v;
}

at::Tensor load_tensor(const PyValue& value) {
  TORCH_CHECK(value.kind == PyValue::Kind::kTensor, "expected a tensor, got a ", value.type_name());
  if (!value.source) return value.tensor;
  const auto& s = *value.source;
  const auto flat = read_storage(*s.zip, *s.index, s.path, s.record, s.dtype, s.numel);
  const auto& t = value.tensor;
  if (t.numel() == 0) return torch::empty(t.sizes(), flat.options());
  // In bounds: the unpickler checked the view against the storage's element count.
  return flat.as_strided(t.sizes(), t.strides(), t.storage_offset());
}

std::map<std::string, at::Tensor> tensor_entries(const PyValue& dict) {
  std::map<std::string, at::Tensor> out;
  for (const auto& [k, v] : dict.dict)
    if (k->kind == PyValue::Kind::kString && v->kind == PyValue::Kind::kTensor)
      out.emplace(k->text, load_tensor(*v));
  return out;
}

namespace {

// A pickle protocol-2 writer for the values PyValue holds, emitting exactly the opcodes and
// globals of Python's torch.save. Tensors are written contiguous, one storage each.
class Pickler {
 public:
  explicit Pickler(caffe2::serialize::PyTorchStreamWriter& zip) : zip_(zip) {}

  std::string run(const PyValue& v) {
    out_ = "\x80\x02";
    write(v);
    out_ += '.';
    return out_;
  }

 private:
  void op(char c) { out_ += c; }
  template <typename T>
  void raw(T v) {
    out_.append(reinterpret_cast<const char*>(&v), sizeof(T));
  }
  void str(const std::string& s) {
    op('X');
    raw(static_cast<uint32_t>(s.size()));
    out_ += s;
  }
  void integer(int64_t i) {
    if (i >= INT32_MIN && i <= INT32_MAX) {
      op('J');
      raw(static_cast<int32_t>(i));
    } else {
      op('\x8a');
      raw(static_cast<uint8_t>(8));
      raw(i);
    }
  }
  void global(const char* module, const char* name) {
    out_ += 'c';
    out_ += module;
    out_ += '\n';
    out_ += name;
    out_ += '\n';
  }
  void tensor(const at::Tensor& input) {
    static const std::map<c10::ScalarType, const char*> kStorage = {
        {c10::kFloat, "FloatStorage"}, {c10::kDouble, "DoubleStorage"},
        {c10::kHalf, "HalfStorage"},   {c10::kBFloat16, "BFloat16Storage"},
        {c10::kLong, "LongStorage"},   {c10::kInt, "IntStorage"},
        {c10::kShort, "ShortStorage"}, {c10::kChar, "CharStorage"},
        {c10::kByte, "ByteStorage"},   {c10::kBool, "BoolStorage"}};
    const auto t = input.detach().cpu().contiguous();
    const auto type = kStorage.find(t.scalar_type());
    TORCH_CHECK(type != kStorage.end(), "cannot save a tensor of type ", t.scalar_type());
    const std::string key = std::to_string(next_key_++);
    zip_.writeRecord("data/" + key, t.data_ptr(), t.numel() * t.element_size());
    global("torch._utils", "_rebuild_tensor_v2");
    op('(');
    op('(');
    str("storage");
    global("torch", type->second);
    str(key);
    str("cpu");
    integer(t.numel());
    op('t');
    op('Q');  // BINPERSID
    integer(0);
    op('(');
    for (auto d : t.sizes()) integer(d);
    op('t');
    op('(');
    for (auto d : t.strides()) integer(d);
    op('t');
    op('\x89');  // requires_grad = False
    global("collections", "OrderedDict");
    op(')');
    op('R');
    op('t');
    op('R');
  }
  void write(const PyValue& v) {
    using K = PyValue::Kind;
    switch (v.kind) {
      case K::kNone:
        op('N');
        break;
      case K::kBool:
        op(v.boolean ? '\x88' : '\x89');
        break;
      case K::kInt:
        integer(v.integer);
        break;
      case K::kFloat: {
        uint64_t u;
        std::memcpy(&u, &v.real, 8);
        op('G');
        for (int i = 7; i >= 0; --i) out_ += static_cast<char>((u >> (8 * i)) & 0xff);
        break;
      }
      case K::kString:
        str(v.text);
        break;
      case K::kBytes:
        op('B');
        raw(static_cast<uint32_t>(v.text.size()));
        out_ += v.text;
        break;
      case K::kTensor:
        tensor(v.tensor);
        break;
      case K::kList:
      case K::kTuple:
        op(v.kind == K::kList ? ']' : '(');
        if (v.kind == K::kList) op('(');
        for (const auto& item : v.items) write(*item);
        op(v.kind == K::kList ? 'e' : 't');
        break;
      case K::kDict:
        op('}');
        op('(');
        for (const auto& [key, value] : v.dict) {
          write(*key);
          write(*value);
        }
        op('u');
        break;
    }
  }

  caffe2::serialize::PyTorchStreamWriter& zip_;
  std::string out_;
  int64_t next_key_ = 0;
};

}  // namespace

void write_torch_file(const std::string& path, const PyValue& value) {
  std::string bytes;
  {
    caffe2::serialize::PyTorchStreamWriter zip([&bytes](const void* data, size_t size) {
      bytes.append(static_cast<const char*>(data), size);
      return size;
    });
    const std::string pickle = Pickler(zip).run(value);
    zip.writeRecord("data.pkl", pickle.data(), pickle.size());
    zip.writeEndOfFile();
  }
  write_file_atomic(path, bytes);
}

void write_tensor_dict(const std::string& path, const std::map<std::string, at::Tensor>& tensors) {
  auto dict = PyValue::new_dict();
  for (const auto& [k, v] : tensors) dict->set(k, PyValue::of(v));
  write_torch_file(path, *dict);
}

}  // namespace hg::io
