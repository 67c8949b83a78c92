#include "hg/io/deployment.h"

#include <c10/util/Exception.h>

namespace hg::io {
namespace {

std::vector<std::pair<int, int>> pairs_from_json(const nlohmann::json& j, const char* key,
                                                 const std::string& where) {
  std::vector<std::pair<int, int>> out;
  if (!j.contains(key)) return out;
  const auto& list = j.at(key);
  TORCH_CHECK(list.is_array(), where, ": joint set key '", key, "' must be a list of pairs, got ",
              list.dump());
  for (const auto& p : list) {
    TORCH_CHECK(
        p.is_array() && p.size() == 2 && p[0].is_number_integer() && p[1].is_number_integer(),
        where, ": joint set key '", key, "' holds ", p.dump(), ", not a pair of indices");
    out.emplace_back(p[0].get<int>(), p[1].get<int>());
  }
  return out;
}

}  // namespace

std::string pixel_grid_name(data::PixelGrid grid) {
  return grid == data::PixelGrid::kExact ? "exact" : "original";
}

nlohmann::json joint_set_to_json(const data::JointSet& joints) {
  return {{"name", joints.name},
          {"names", joints.names},
          {"flip_pairs", joints.flip_pairs},
          {"skeleton", joints.skeleton}};
}

data::JointSet joint_set_from_json(const nlohmann::json& j, const std::string& where) {
  TORCH_CHECK(j.is_object() && j.contains("names") && j["names"].is_array(), where,
              ": the joint set must be an object with a list 'names', got ", j.dump());
  data::JointSet joints;
  joints.name = j.value("name", "");
  for (const auto& n : j["names"]) {
    TORCH_CHECK(n.is_string(), where, ": joint name ", n.dump(), " is not a string");
    joints.names.push_back(n.get<std::string>());
  }
  joints.flip_pairs = pairs_from_json(j, "flip_pairs", where);
  joints.skeleton = pairs_from_json(j, "skeleton", where);
  joints.validate(where);
  return joints;
}

}  // namespace hg::io
