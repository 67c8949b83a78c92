#include "hg/data/readers.h"
#include "hg/runtime/text.h"

#include "hg/data/json.h"
#include "hg/data/synthetic.h"
#include "hg/runtime/limits.h"

#include <H5Cpp.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace hg::data {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

[[noreturn]] void fail(const std::string& file, const std::string& why) {
  throw std::runtime_error("cannot read " + file + ": " + why);
}

std::string number_text(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

// A coordinate or size: finite and within limits::kMaxCoordinate (a box of 1e300 would overflow
// every crop computation after it).
double coordinate(const std::string& file, double v, const std::string& where) {
  if (!std::isfinite(v) || std::abs(v) > limits::kMaxCoordinate)
    fail(file, "field '" + where + "' = " + number_text(v) + " is not a coordinate (finite, at " +
                   "most " + number_text(limits::kMaxCoordinate) + " in magnitude)");
  return v;
}

// An integer value held as a double (HDF5 and JSON numbers), without an undefined cast.
int64_t whole(const std::string& file, double v, const std::string& where) {
  if (!(std::abs(v) <= 9.0e15) || v != std::floor(v))
    fail(file, "field '" + where + "' = " + number_text(v) + " is not an integer");
  return static_cast<int64_t>(v);
}

std::string default_image_dir(const std::string& annotation_path, const char* relative) {
  return (fs::path(annotation_path).parent_path() / relative).lexically_normal().string();
}

// ---- HDF5 ---------------------------------------------------------------------------------------

struct H5Numeric {
  std::vector<hsize_t> dims;
  std::vector<double> values;
};

std::string shape_string(const std::vector<hsize_t>& dims) {
  std::string s;
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? "×" : "") + std::to_string(dims[i]);
  return dims.empty() ? "a scalar" : s;
}

H5::DataSet open_dataset(H5::H5File& file, const std::string& path, const std::string& name) {
  if (!H5Lexists(file.getId(), name.c_str(), H5P_DEFAULT))
    fail(path, "no dataset '" + name + "' (is this an MPII/FLIC annotation file of the original " +
                   "stacked-hourglass code?)");
  return file.openDataSet(name);
}

std::vector<hsize_t> dims_of(const H5::DataSet& d) {
  H5::DataSpace space = d.getSpace();
  std::vector<hsize_t> dims(static_cast<size_t>(space.getSimpleExtentNdims()));
  space.getSimpleExtentDims(dims.data());
  return dims;
}

H5Numeric read_numeric(H5::H5File& file, const std::string& path, const std::string& name) {
  H5::DataSet d = open_dataset(file, path, name);
  const H5T_class_t cls = d.getTypeClass();
  if (cls != H5T_INTEGER && cls != H5T_FLOAT) fail(path, "dataset '" + name + "' must be numeric");
  H5Numeric out;
  out.dims = dims_of(d);
  size_t n = 1;
  for (hsize_t v : out.dims)
    if (__builtin_mul_overflow(n, v, &n) || n > limits::kMaxAnnotationValues)
      fail(path, "dataset '" + name + "' has shape " + shape_string(out.dims) +
                     ", more than the limit of " + std::to_string(limits::kMaxAnnotationValues) +
                     " values");
  out.values.resize(n);
  if (n > 0) d.read(out.values.data(), H5::PredType::NATIVE_DOUBLE);
  return out;
}

std::vector<std::string> read_strings(H5::H5File& file, const std::string& path,
                                      const std::string& name) {
  H5::DataSet d = open_dataset(file, path, name);
  if (d.getTypeClass() != H5T_STRING) fail(path, "dataset '" + name + "' must hold strings");
  const auto dims = dims_of(d);
  if (dims.size() != 1)
    fail(path, "dataset '" + name + "' has shape " + shape_string(dims) + ", expected N strings");
  const size_t n = dims[0];
  H5::StrType type = d.getStrType();
  if (n > limits::kMaxAnnotationValues || type.getSize() > 4096)
    fail(path, "dataset '" + name + "' holds " + std::to_string(n) + " strings of " +
                   std::to_string(type.getSize()) + " bytes, more than the limits (" +
                   std::to_string(limits::kMaxAnnotationValues) + " strings of 4096 bytes)");
  std::vector<std::string> out(n);
  if (n == 0) return out;
  if (type.isVariableStr()) {
    std::vector<char*> buf(n, nullptr);
    d.read(buf.data(), type);
    for (size_t i = 0; i < n; ++i) out[i] = buf[i] ? buf[i] : "";
    H5::DataSet::vlenReclaim(buf.data(), type, d.getSpace());
  } else {
    const size_t width = type.getSize();
    std::vector<char> buf(n * width);
    d.read(buf.data(), type);
    for (size_t i = 0; i < n; ++i) {
      std::string s(buf.data() + i * width, width);
      s = s.substr(0, s.find('\0'));
      while (!s.empty() && s.back() == ' ') s.pop_back();
      out[i] = s;
    }
  }
  return out;
}

void expect_shape(const std::string& path, const std::string& name, const H5Numeric& a,
                  std::vector<hsize_t> expected, const std::string& expected_text) {
  // N×1 is accepted where N is expected (some writers keep a trailing singleton).
  auto dims = a.dims;
  if (dims.size() == expected.size() + 1 && dims.back() == 1) dims.pop_back();
  if (dims != expected)
    fail(path, "dataset '" + name + "' has shape " + shape_string(a.dims) + ", expected " +
                   expected_text);
}

std::shared_ptr<FileDataset> read_h5(const std::string& path, std::string image_dir,
                                     JointSet joints) {
  if (!fs::is_regular_file(path)) fail(path, "no such file");
  if (image_dir.empty()) image_dir = default_image_dir(path, "../images");
  H5::Exception::dontPrint();
  try {
    if (!H5::H5File::isHdf5(path)) fail(path, "not an HDF5 file");
    H5::H5File file(path, H5F_ACC_RDONLY);
    const auto names = read_strings(file, path, "imgname");
    const hsize_t n = names.size();
    const hsize_t j = static_cast<hsize_t>(joints.size());
    const std::string nj = "N×" + std::to_string(j);
    const auto center = read_numeric(file, path, "center");
    expect_shape(path, "center", center, {n, 2}, "N×2 with N = " + std::to_string(n));
    const auto scale = read_numeric(file, path, "scale");
    expect_shape(path, "scale", scale, {n}, "N = " + std::to_string(n));
    const auto part = read_numeric(file, path, "part");
    expect_shape(path, "part", part, {n, j, 2},
                 nj + "×2 (" + joints.name + " has " + std::to_string(j) + " joints)");
    const auto visible = read_numeric(file, path, "visible");
    expect_shape(path, "visible", visible, {n, j}, nj);
    const auto normalize = read_numeric(file, path, "normalize");
    expect_shape(path, "normalize", normalize, {n}, "N = " + std::to_string(n));
    auto optional = [&](const char* name) {
      if (!H5Lexists(file.getId(), name, H5P_DEFAULT)) return std::vector<double>{};
      auto a = read_numeric(file, path, name);
      expect_shape(path, name, a, {n}, "N = " + std::to_string(n));
      return a.values;
    };
    const auto index = optional("index"), person = optional("person"),
               torso = optional("torsoangle");

    std::vector<Annotation> samples(n);
    for (size_t i = 0; i < n; ++i) {
      Annotation& a = samples[i];
      const std::string entry = "[" + std::to_string(i) + "]";
      a.image = (fs::path(image_dir) / names[i]).string();
      a.center = {center.values[2 * i], center.values[2 * i + 1]};
      a.scale = scale.values[i];
      if (!(a.scale > 0) || !std::isfinite(a.center.x) || !std::isfinite(a.center.y))
        fail(path, "entry " + std::to_string(i) + " has scale " + std::to_string(a.scale) +
                       " and centre (" + std::to_string(a.center.x) + ", " +
                       std::to_string(a.center.y) + "): scale must be > 0, centre finite");
      coordinate(path, a.center.x, "center" + entry + "[0]");
      coordinate(path, a.center.y, "center" + entry + "[1]");
      coordinate(path, a.scale, "scale" + entry);
      // The PCK unit (MPII's head size, FLIC's torso): 0 or NaN would make every error 0 or NaN.
      a.normalize = normalize.values[i];
      if (!(a.normalize > 0) || !std::isfinite(a.normalize))
        fail(path, "field 'normalize" + entry + "' = " + number_text(a.normalize) +
                       " must be a positive size (the PCK unit of the person)");
      coordinate(path, a.normalize, "normalize" + entry);
      a.index = index.empty() ? static_cast<int64_t>(i) : whole(path, index[i], "index" + entry);
      a.person = person.empty() ? 0 : whole(path, person[i], "person" + entry);
      a.torso_angle = torso.empty() ? 0 : torso[i];
      a.joints.resize(j);
      for (size_t k = 0; k < j; ++k) {
        Keypoint& p = a.joints[k];
        p.pos = {part.values[(i * j + k) * 2], part.values[(i * j + k) * 2 + 1]};
        const std::string at = "part" + entry + "[" + std::to_string(k) + "]";
        coordinate(path, p.pos.x, at + "[0]");
        coordinate(path, p.pos.y, at + "[1]");
        p.present =
            std::isfinite(p.pos.x) && std::isfinite(p.pos.y) && !(p.pos.x == 0 && p.pos.y == 0);
        p.visible = p.present && visible.values[i * j + k] > 0;
      }
    }
    return std::make_shared<FileDataset>(std::move(joints), std::move(samples), path);
  } catch (const H5::Exception& e) {
    fail(path, "HDF5 error in " + e.getFuncName() + ": " + e.getDetailMsg());
  }
}

// ---- JSON ---------------------------------------------------------------------------------------

json read_json(const std::string& path) {
  std::ifstream in(path);
  if (!in) fail(path, fs::exists(path) ? "cannot open the file" : "no such file");
  return parse_json(in, path);
}

// Field access that names the JSON path of the culprit in its error.
const json& field(const std::string& file, const json& obj, const std::string& where,
                  const char* key) {
  if (!obj.is_object()) fail(file, where + " must be an object");
  auto it = obj.find(key);
  if (it == obj.end()) fail(file, "missing field '" + where + "." + key + "'");
  return *it;
}

double number(const std::string& file, const json& v, const std::string& where) {
  if (!v.is_number())
    fail(file, "field '" + where + "' must be a number, got " + runtime::json_text(v));
  return v.get<double>();
}

int64_t integer(const std::string& file, const json& v, const std::string& where) {
  return whole(file, number(file, v, where), where);
}

std::vector<double> numbers(const std::string& file, const json& v, const std::string& where,
                            size_t expected, const std::string& what) {
  if (!v.is_array() || v.size() != expected)
    fail(file, "field '" + where + "' must be " + what + ", got " +
                   (v.is_array() ? std::to_string(v.size()) + " values" : runtime::json_text(v)));
  std::vector<double> out;
  for (size_t i = 0; i < v.size(); ++i)
    out.push_back(number(file, v[i], where + "[" + std::to_string(i) + "]"));
  return out;
}

std::vector<std::pair<int, int>> index_pairs(const std::string& file, const json& v,
                                             const std::string& where, int base) {
  if (!v.is_array()) fail(file, "field '" + where + "' must be a list of [a, b] pairs");
  std::vector<std::pair<int, int>> out;
  for (size_t i = 0; i < v.size(); ++i) {
    const std::string at = where + "[" + std::to_string(i) + "]";
    const auto p = numbers(file, v[i], at, 2, "[a, b]");
    const int64_t a = whole(file, p[0], at + "[0]"), b = whole(file, p[1], at + "[1]");
    // Out-of-range indices are JointSet::validate's to report; keep them out of int's range.
    out.emplace_back(static_cast<int>(std::clamp<int64_t>(a - base, -1, 1 << 20)),
                     static_cast<int>(std::clamp<int64_t>(b - base, -1, 1 << 20)));
  }
  return out;
}

// The crop of a box [x, y, w, h] (COCO and custom): centre and scale with 25% margin.
void set_box(Annotation& a, const std::vector<double>& box, const std::string& file,
             const std::string& where) {
  for (size_t i = 0; i < 4; ++i) coordinate(file, box[i], where + "[" + std::to_string(i) + "]");
  if (!(box[2] > 0 && box[3] > 0))
    fail(file, "field '" + where + "' must have positive width and height");
  a.center = {box[0] + box[2] / 2, box[1] + box[3] / 2};
  a.scale = kBoxMargin * std::max(box[2], box[3]) / 200.0;
}

void set_joints(Annotation& a, const std::vector<double>& flat, size_t joints,
                const std::string& file, const std::string& where) {
  a.joints.resize(joints);
  for (size_t k = 0; k < joints; ++k) {
    Keypoint& p = a.joints[k];
    coordinate(file, flat[3 * k], where + "[" + std::to_string(3 * k) + "]");
    coordinate(file, flat[3 * k + 1], where + "[" + std::to_string(3 * k + 1) + "]");
    p.pos = {flat[3 * k], flat[3 * k + 1]};
    p.present = flat[3 * k + 2] > 0;
    p.visible = flat[3 * k + 2] > 1;
  }
}

}  // namespace

std::shared_ptr<FileDataset> read_mpii_h5(const std::string& h5_path,
                                          const std::string& image_dir) {
  return read_h5(h5_path, image_dir, mpii_joints());
}

std::shared_ptr<FileDataset> read_flic_h5(const std::string& h5_path,
                                          const std::string& image_dir) {
  return read_h5(h5_path, image_dir, flic_joints());
}

std::shared_ptr<FileDataset> read_coco_json(const std::string& json_path, const std::string& dir) {
  const json root = read_json(json_path);
  const std::string image_dir = dir.empty() ? default_image_dir(json_path, "images") : dir;
  const std::string& f = json_path;
  JointSet joints = coco_joints();
  int64_t person_id = 1;
  const json& categories = field(f, root, "", "categories");
  if (!categories.is_array()) fail(f, "field '.categories' must be a list");
  bool found = false;
  for (size_t i = 0; i < categories.size(); ++i) {
    const std::string w = ".categories[" + std::to_string(i) + "]";
    const json& c = categories[i];
    if (!c.is_object() || c.value("name", "") != "person") continue;
    found = true;
    person_id = integer(f, field(f, c, w, "id"), w + ".id");
    if (c.contains("keypoints") && c["keypoints"].is_array() && c["keypoints"].size() != 17)
      fail(f, "field '" + w + ".keypoints' lists " + std::to_string(c["keypoints"].size()) +
                  " keypoints, expected COCO's 17");
    if (c.contains("skeleton")) joints.skeleton = index_pairs(f, c["skeleton"], w + ".skeleton", 1);
  }
  if (!found) fail(f, "no category named 'person' in '.categories'");

  std::map<int64_t, std::string> files;
  const json& images = field(f, root, "", "images");
  if (!images.is_array()) fail(f, "field '.images' must be a list");
  for (size_t i = 0; i < images.size(); ++i) {
    const std::string w = ".images[" + std::to_string(i) + "]";
    const json& name = field(f, images[i], w, "file_name");
    if (!name.is_string()) fail(f, "field '" + w + ".file_name' must be a string");
    files[integer(f, field(f, images[i], w, "id"), w + ".id")] = name.get<std::string>();
  }
  const json& annotations = field(f, root, "", "annotations");
  if (!annotations.is_array()) fail(f, "field '.annotations' must be a list");
  std::vector<Annotation> samples;
  std::map<int64_t, int64_t> people_in_image;
  for (size_t i = 0; i < annotations.size(); ++i) {
    const std::string w = ".annotations[" + std::to_string(i) + "]";
    const json& an = annotations[i];
    if (integer(f, field(f, an, w, "category_id"), w + ".category_id") != person_id) continue;
    if (an.value("iscrowd", 0) != 0) continue;
    const auto kp = numbers(f, field(f, an, w, "keypoints"), w + ".keypoints", 51,
                            "17 × (x, y, v) = 51 numbers");
    Annotation a;
    set_joints(a, kp, 17, f, w + ".keypoints");
    bool any = false;
    for (const auto& p : a.joints) any = any || p.present;
    if (!any) continue;
    set_box(a, numbers(f, field(f, an, w, "bbox"), w + ".bbox", 4, "[x, y, w, h]"), f, w + ".bbox");
    const auto image_id = integer(f, field(f, an, w, "image_id"), w + ".image_id");
    auto it = files.find(image_id);
    if (it == files.end())
      fail(f, "field '" + w + ".image_id' = " + std::to_string(image_id) +
                  " names no entry of '.images'");
    a.image = (fs::path(image_dir) / it->second).string();
    a.index = image_id;
    a.person = people_in_image[image_id]++;
    samples.push_back(std::move(a));
  }
  return std::make_shared<FileDataset>(std::move(joints), std::move(samples), json_path);
}

json joint_set_to_json(const JointSet& joints) {
  json j = {{"name", joints.name},
            {"joints", joints.names},
            {"flip_pairs", json::array()},
            {"skeleton", json::array()}};
  for (const auto& [a, b] : joints.flip_pairs) j["flip_pairs"].push_back({a, b});
  for (const auto& [a, b] : joints.skeleton) j["skeleton"].push_back({a, b});
  if (!joints.sigmas.empty()) j["sigmas"] = joints.sigmas;
  return j;
}

JointSet joint_set_from_json(const json& root, const std::string& f,
                             const std::string& default_name) {
  JointSet joints;
  if (!root.is_object()) fail(f, "the joint set must be an object");
  if (root.contains("name") && !root["name"].is_string()) fail(f, "field '.name' must be a string");
  joints.name = root.value("name", default_name);
  const json& names = field(f, root, "", "joints");
  if (!names.is_array() || names.empty())
    fail(f, "field '.joints' must be a non-empty list of joint names");
  for (size_t i = 0; i < names.size(); ++i) {
    if (!names[i].is_string())
      fail(f, "field '.joints[" + std::to_string(i) + "]' must be a string (a joint name)");
    joints.names.push_back(names[i].get<std::string>());
  }
  if (root.contains("flip_pairs"))
    joints.flip_pairs = index_pairs(f, root["flip_pairs"], ".flip_pairs", 0);
  if (root.contains("skeleton")) joints.skeleton = index_pairs(f, root["skeleton"], ".skeleton", 0);
  if (root.contains("sigmas")) {
    joints.sigmas = numbers(f, root["sigmas"], ".sigmas", names.size(),
                            "one positive OKS σ per joint (" + std::to_string(names.size()) + ")");
    for (size_t i = 0; i < joints.sigmas.size(); ++i)
      if (!(joints.sigmas[i] > 0))
        fail(f, "field '.sigmas[" + std::to_string(i) + "]' must be positive");
  }
  joints.validate(f);
  return joints;
}

std::shared_ptr<FileDataset> read_custom_json(const std::string& json_path) {
  const json root = read_json(json_path);
  const std::string& f = json_path;
  const json& format = field(f, root, "", "format");
  if (format != "hourglass-pose")
    fail(f, "field '.format' must be \"hourglass-pose\", got " + runtime::json_text(format));
  if (root.contains("version") && root["version"] != 1)
    fail(f, "field '.version' = " + runtime::json_text(root["version"]) +
                " is not supported (expected 1)");
  const JointSet joints = joint_set_from_json(root, f);
  const size_t nj = joints.names.size();
  std::string root_dir = fs::path(json_path).parent_path().string();
  if (root.contains("image_root")) {
    if (!root["image_root"].is_string()) fail(f, "field '.image_root' must be a string");
    root_dir = (fs::path(root_dir) / root["image_root"].get<std::string>()).string();
  }
  const json& list = field(f, root, "", "samples");
  if (!list.is_array()) fail(f, "field '.samples' must be a list");
  std::vector<Annotation> samples;
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string w = ".samples[" + std::to_string(i) + "]";
    const json& s = list[i];
    Annotation a;
    const json& image = field(f, s, w, "image");
    if (!image.is_string()) fail(f, "field '" + w + ".image' must be a string (a path)");
    a.image = (fs::path(root_dir) / image.get<std::string>()).lexically_normal().string();
    const json& js = field(f, s, w, "joints");
    if (!js.is_array() || js.size() != nj)
      fail(f, "field '" + w + ".joints' must list " + std::to_string(nj) +
                  " joints [x, y, v], got " +
                  (js.is_array() ? std::to_string(js.size()) : runtime::json_text(js)));
    std::vector<double> flat;
    for (size_t k = 0; k < nj; ++k) {
      const std::string at = w + ".joints[" + std::to_string(k) + "]";
      const auto p = numbers(f, js[k], at, 3, "[x, y, v]");
      coordinate(f, p[0], at + "[0]");
      coordinate(f, p[1], at + "[1]");
      flat.insert(flat.end(), p.begin(), p.end());
    }
    set_joints(a, flat, nj, f, w + ".joints");
    if (s.contains("box")) {
      set_box(a, numbers(f, s["box"], w + ".box", 4, "[x, y, w, h]"), f, w + ".box");
    } else if (s.contains("center") && s.contains("scale")) {
      const auto c = numbers(f, s["center"], w + ".center", 2, "[x, y]");
      a.center = {coordinate(f, c[0], w + ".center[0]"), coordinate(f, c[1], w + ".center[1]")};
      a.scale = coordinate(f, number(f, s["scale"], w + ".scale"), w + ".scale");
      if (!(a.scale > 0)) fail(f, "field '" + w + ".scale' must be > 0");
    } else {
      fail(f, "sample " + w + " needs either 'box' [x, y, w, h] or 'center' [x, y] and 'scale'");
    }
    if (s.contains("normalize")) {
      a.normalize = coordinate(f, number(f, s["normalize"], w + ".normalize"), w + ".normalize");
      if (!(a.normalize > 0))
        fail(f, "field '" + w + ".normalize' must be a positive size (the PCK unit), got " +
                    number_text(a.normalize));
    }
    a.index = static_cast<int64_t>(i);
    samples.push_back(std::move(a));
  }
  return std::make_shared<FileDataset>(std::move(joints), std::move(samples), json_path);
}

std::shared_ptr<FileDataset> open_annotations(const std::string& path,
                                              const std::string& image_dir) {
  const std::string ext = fs::path(path).extension().string();
  if (ext == ".h5" || ext == ".hdf5") {
    if (!fs::is_regular_file(path)) fail(path, "no such file");
    H5::Exception::dontPrint();
    hsize_t joints = 0;
    try {
      if (!H5::H5File::isHdf5(path)) fail(path, "not an HDF5 file");
      H5::H5File file(path, H5F_ACC_RDONLY);
      const auto dims = dims_of(open_dataset(file, path, "part"));
      if (dims.size() == 3) joints = dims[1];
    } catch (const H5::Exception& e) {
      fail(path, "HDF5 error in " + e.getFuncName() + ": " + e.getDetailMsg());
    }
    if (joints == 16) return read_mpii_h5(path, image_dir);
    if (joints == 11) return read_flic_h5(path, image_dir);
    fail(path, "dataset 'part' must be N×16×2 (MPII) or N×11×2 (FLIC)");
  }
  if (ext == ".json") {
    const json root = read_json(path);
    if (root.is_object() && root.contains("format")) return read_custom_json(path);
    if (root.is_object() && root.contains("annotations")) return read_coco_json(path, image_dir);
    fail(path, "JSON with neither 'format' (hourglass-pose) nor 'annotations' (COCO)");
  }
  fail(path, "unknown annotation format '" + ext + "' (expected .h5 or .json)");
}

std::shared_ptr<Dataset> open_dataset(const std::string& spec, const std::string& image_dir) {
  const std::string prefix = "synthetic:";
  if (spec.rfind(prefix, 0) != 0) return open_annotations(spec, image_dir);
  const std::string rest = spec.substr(prefix.size());
  const size_t colon = rest.find(':');
  bool too_many = false;
  try {
    size_t used = 0;
    const std::string count = rest.substr(0, colon);
    const long long n = std::stoll(count, &used);
    if (used != count.size() || n <= 0) throw std::invalid_argument("count");
    if (n > limits::kMaxSyntheticPeople) too_many = true;
    uint64_t seed = 0;
    if (colon != std::string::npos) {
      const std::string s = rest.substr(colon + 1);
      seed = std::stoull(s, &used);
      if (used != s.size()) throw std::invalid_argument("seed");
    }
    if (!too_many) return std::make_shared<SyntheticDataset>(static_cast<size_t>(n), seed);
  } catch (const std::logic_error&) {
    throw std::invalid_argument("bad dataset spec '" + spec +
                                "': expected synthetic:N or synthetic:N:SEED with N > 0");
  }
  throw std::invalid_argument("bad dataset spec '" + spec + "': synthetic:N takes at most " +
                              std::to_string(limits::kMaxSyntheticPeople) + " people");
}

}  // namespace hg::data
