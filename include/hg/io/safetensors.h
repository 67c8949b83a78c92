#pragma once
/// safetensors (https://huggingface.co/docs/safetensors): an 8-byte little-endian header length,
/// a JSON header {"__metadata__": {string: string}, name: {"dtype", "shape", "data_offsets"}},
/// then the tensors' bytes. No code, and every offset is checked against the file before any
/// data is read.
///
/// A model's file holds its native state dict and, in `__metadata__`: "format" = "hourglass",
/// "architecture" (options JSON), "joints" (joint_set_to_json) and "meta" (checkpoint meta JSON).

#include "hg/data/dataset.h"
#include "hg/io/checkpoint.h"

#include <nlohmann/json.hpp>

#include <map>
#include <string>

namespace hg::io {

struct SafetensorsFile {
  std::map<std::string, at::Tensor> tensors;
  std::map<std::string, std::string> metadata;
};

/// Writes `tensors` (any CPU dtype safetensors names: F64, F32, F16, BF16, I64, I32, I16, I8, U8,
/// BOOL) and `metadata` to `path` atomically.
void write_safetensors(const std::string& path, const std::map<std::string, at::Tensor>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

/// Reads a safetensors file. Throws, naming the file and the entry, if it is truncated, its header
/// is not JSON of the format, a dtype is unknown, a shape does not match its byte range, or the
/// ranges leave the data, overlap or leave holes.
SafetensorsFile read_safetensors(const std::string& path);

/// True if `path` starts like a safetensors file (a header length, then '{').
bool is_safetensors_file(const std::string& path);

/// Writes `model`'s native state dict with its architecture, joint set and `meta`.
void export_safetensors(const std::string& path, model::StackedHourglassImpl& model,
                        const data::JointSet& joints,
                        const nlohmann::json& meta = nlohmann::json::object());

/// Loads a safetensors model: ours (native names, architecture from `__metadata__`; meta is its
/// "meta" with the joint set under "joints") or a posenet/bearpaw state dict saved as
/// safetensors (architecture inferred as for their PyTorch files). In eval mode.
LoadedModel load_safetensors_model(const std::string& path);

}  // namespace hg::io
