#include "hg/io/safetensors.h"
#include "hg/runtime/text.h"

#include "hg/data/json.h"
#include "hg/data/readers.h"
#include "hg/io/atomic_file.h"
#include "hg/io/deployment.h"
#include "hg/io/import_pytorch.h"
#include "hg/io/torch_file.h"

#include <torch/torch.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>

namespace hg::io {
namespace {

using nlohmann::json;

constexpr const char* kFormatTag = "hourglass";
// The format's own limit on the header, which keeps a corrupt length from allocating gigabytes.
constexpr uint64_t kMaxHeader = 100'000'000;

const std::vector<std::pair<const char*, c10::ScalarType>>& dtypes() {
  static const std::vector<std::pair<const char*, c10::ScalarType>> table = {
      {"F64", c10::kDouble}, {"F32", c10::kFloat}, {"F16", c10::kHalf},  {"BF16", c10::kBFloat16},
      {"I64", c10::kLong},   {"I32", c10::kInt},   {"I16", c10::kShort}, {"I8", c10::kChar},
      {"U8", c10::kByte},    {"BOOL", c10::kBool}};
  return table;
}

std::string dtype_name(c10::ScalarType t, const std::string& tensor) {
  for (const auto& [name, type] : dtypes())
    if (type == t) return name;
  TORCH_CHECK(false, "cannot write tensor '", tensor, "' to safetensors: dtype ", t,
              " has no safetensors name");
}

// One entry of the header, checked.
struct Entry {
  std::string name;
  c10::ScalarType dtype;
  std::vector<int64_t> shape;
  uint64_t begin, end;
};

Entry parse_entry(const std::string& name, const json& e, uint64_t data_size,
                  const std::string& path) {
  auto fail = [&](const auto&... what) {
    TORCH_CHECK(false, "cannot read ", path, ": tensor '", name, "': ", what...);
  };
  if (!e.is_object() || !e.contains("dtype") || !e.contains("shape") || !e.contains("data_offsets"))
    fail("the header entry must have dtype, shape and data_offsets, got ", runtime::json_text(e));
  Entry out{name, c10::kFloat, {}, 0, 0};
  const auto& dtype = e["dtype"];
  const auto known = std::find_if(dtypes().begin(), dtypes().end(),
                                  [&](const auto& d) { return dtype == d.first; });
  if (known == dtypes().end()) fail("unknown dtype ", runtime::json_text(dtype));
  out.dtype = known->second;
  if (!e["shape"].is_array()) fail("shape ", runtime::json_text(e["shape"]), " is not a list");
  uint64_t numel = 1;
  for (const auto& d : e["shape"]) {
    if (!d.is_number_unsigned())
      fail("shape ", runtime::json_text(e["shape"]), " holds ", runtime::json_text(d));
    const uint64_t n = d.get<uint64_t>();
    if (n != 0 && numel > (uint64_t{1} << 56) / n)
      fail("shape ", runtime::json_text(e["shape"]), " is too big");
    numel *= n;
    out.shape.push_back(static_cast<int64_t>(n));
  }
  const auto& off = e["data_offsets"];
  if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() ||
      !off[1].is_number_unsigned())
    fail("data_offsets ", runtime::json_text(off), " is not a pair of offsets");
  out.begin = off[0].get<uint64_t>();
  out.end = off[1].get<uint64_t>();
  if (out.begin > out.end || out.end > data_size)
    fail("data_offsets ", runtime::json_text(off), " are not a range inside the ", data_size,
         " bytes of data (truncated file?)");
  const uint64_t bytes = numel * c10::elementSize(out.dtype);
  if (out.end - out.begin != bytes)
    fail("shape ", runtime::json_text(e["shape"]), " of ", dtype.get<std::string>(), " needs ",
         bytes, " bytes, data_offsets ", runtime::json_text(off), " hold ", out.end - out.begin);
  return out;
}

uint64_t read_u64_le(const unsigned char* b) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | b[i];
  return v;
}

}  // namespace

void write_safetensors(const std::string& path, const std::map<std::string, at::Tensor>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<at::Tensor> data;
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    TORCH_CHECK(name != "__metadata__", "cannot write ", path,
                ": '__metadata__' is not a tensor name");
    const auto c = t.detach().cpu().contiguous();
    const uint64_t bytes = c.numel() * c.element_size();
    header[name] = {{"dtype", dtype_name(c.scalar_type(), name)},
                    {"shape", c.sizes().vec()},
                    {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
    data.push_back(c);
  }
  std::string text = runtime::json_text(header);
  text.append((8 - text.size() % 8) % 8, ' ');  // keeps the data 8-byte aligned
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((text.size() >> (8 * i)) & 0xff);
  bytes += text;
  bytes.reserve(bytes.size() + offset);
  for (const auto& c : data)
    bytes.append(static_cast<const char*>(c.data_ptr()), c.numel() * c.element_size());
  write_file_atomic(path, bytes);
}

SafetensorsFile read_safetensors(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  TORCH_CHECK(in.good(), "cannot read ", path, ": ", std::strerror(errno));
  const uint64_t size = std::filesystem::file_size(path);
  unsigned char len[8];
  TORCH_CHECK(size >= 8 && in.read(reinterpret_cast<char*>(len), 8), "cannot read ", path,
              ": the file has ", size,
              " bytes, too few for a safetensors file (8-byte header length first)");
  const uint64_t n = read_u64_le(len);
  TORCH_CHECK(n <= size - 8 && n <= kMaxHeader, "cannot read ", path, ": header length ", n,
              " exceeds the file's ", size - 8,
              " bytes after the length (truncated or not "
              "safetensors?)");
  std::string text(n, '\0');
  in.read(text.data(), static_cast<std::streamsize>(n));
  json header;
  try {
    header = data::parse_json(text, path);
  } catch (const data::JsonError& e) {
    TORCH_CHECK(false, "cannot read ", path, ": the safetensors header is not JSON: ", e.what());
  }
  TORCH_CHECK(header.is_object(), "cannot read ", path, ": the header is a ", header.type_name(),
              ", not a JSON object");

  SafetensorsFile out;
  const uint64_t data_start = 8 + n, data_size = size - data_start;
  std::vector<Entry> entries;
  for (const auto& [key, value] : header.items()) {
    if (key == "__metadata__") {
      TORCH_CHECK(value.is_object(), "cannot read ", path, ": __metadata__ is not an object");
      for (const auto& [k, v] : value.items()) {
        TORCH_CHECK(v.is_string(), "cannot read ", path, ": __metadata__ '", k,
                    "' is not a string: ", runtime::json_text(v));
        out.metadata.emplace(k, v.get<std::string>());
      }
      continue;
    }
    entries.push_back(parse_entry(key, value, data_size, path));
  }
  // The format asks for the ranges to tile the data exactly: no overlap (aliasing) and no holes.
  std::sort(entries.begin(), entries.end(),
            [](const Entry& a, const Entry& b) { return a.begin < b.begin; });
  uint64_t covered = 0;
  for (const auto& e : entries) {
    TORCH_CHECK(e.begin == covered, "cannot read ", path, ": tensor '", e.name, "' starts at byte ",
                e.begin, " of the data, not at ", covered,
                e.begin < covered ? " (overlaps another)" : " (leaves a hole)");
    covered = e.end;
  }
  TORCH_CHECK(covered == data_size, "cannot read ", path, ": the tensors cover ", covered,
              " bytes of data, the file holds ", data_size);

  for (const auto& e : entries) {
    auto t = torch::empty(e.shape, torch::TensorOptions().dtype(e.dtype));
    in.seekg(static_cast<std::streamoff>(data_start + e.begin));
    in.read(static_cast<char*>(t.data_ptr()), static_cast<std::streamsize>(e.end - e.begin));
    TORCH_CHECK(in.good() || e.end == e.begin, "cannot read ", path, ": reading tensor '", e.name,
                "' failed");
    out.tensors.emplace(e.name, t);
  }
  return out;
}

bool is_safetensors_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char head[9];
  return in.read(head, 9) && head[8] == '{';
}

void export_safetensors(const std::string& path, model::StackedHourglassImpl& model,
                        const data::JointSet& joints, const nlohmann::json& meta) {
  TORCH_CHECK(joints.size() == model.options.joints(), "cannot write ", path, ": the joint set '",
              joints.name, "' has ", joints.size(), " joints, the model ", model.options.joints());
  write_safetensors(path, state_of(model),
                    {{"format", kFormatTag},
                     {"architecture", runtime::json_text(options_to_json(model.options))},
                     {"joints", runtime::json_text(data::joint_set_to_json(joints))},
                     {"meta", runtime::json_text(meta)}});
}

LoadedModel load_safetensors_model(const std::string& path) {
  auto file = read_safetensors(path);
  LoadedModel loaded;
  loaded.source = path;
  model::StackedHourglassOptions options;
  std::map<std::string, at::Tensor> state;
  const auto tag = file.metadata.find("format");
  if (tag != file.metadata.end() && tag->second == kFormatTag) {
    auto parse = [&](const char* key) {
      const auto it = file.metadata.find(key);
      TORCH_CHECK(it != file.metadata.end(), "cannot read ", path, ": __metadata__ lacks '", key,
                  "'");
      return data::parse_json(it->second, path + " (__metadata__ '" + key + "')");
    };
    try {
      options = options_from_json(parse("architecture"));
    } catch (const c10::Error& e) {
      TORCH_CHECK(false, "cannot read ", path, ": ", e.msg());
    }
    if (file.metadata.count("meta")) loaded.meta = parse("meta");
    TORCH_CHECK(loaded.meta.is_object(), "cannot read ", path,
                ": __metadata__ 'meta' is not an object");
    if (file.metadata.count("joints")) {
      const auto joints = parse("joints");
      data::joint_set_from_json(joints, path + " __metadata__ 'joints'");
      loaded.meta["joints"] = joints;
    }
    state = std::move(file.tensors);
  } else {
    auto imported = import_state_dict(file.tensors, path);
    loaded.format = imported.format;
    options = imported.options;
    state = std::move(imported.state);
  }
  loaded.model = build_model_for(options, state, path);
  load_state(*loaded.model, state, path);
  loaded.model->eval();
  return loaded;
}

}  // namespace hg::io
