#pragma once
/// Annotation readers. Each returns a FileDataset and throws std::runtime_error naming the file
/// and the field at fault when the file is missing, unreadable or malformed.

#include "hg/data/dataset.h"

#include <nlohmann/json.hpp>

#include <memory>
#include <string>

namespace hg::data {

/// Reads the original stacked-hourglass code's MPII annotation file (HDF5): datasets `imgname`
/// (N fixed-length strings), `center` N×2, `scale` N, `part` N×16×2, `visible` N×16,
/// `normalize` N, and optionally `index`, `person`, `torsoangle` (N each). A joint at (0, 0) is
/// missing. `center`/`scale` already hold the original's adjustment and are used as they are.
/// Images are looked up as `image_dir/imgname`; an empty `image_dir` means
/// `<directory of h5_path>/../images`.
std::shared_ptr<FileDataset> read_mpii_h5(const std::string& h5_path,
                                          const std::string& image_dir = "");

/// Reads FLIC in the same HDF5 layout with 11 joints (`part` N×11×2); `normalize` is the torso
/// length. Images as for read_mpii_h5.
std::shared_ptr<FileDataset> read_flic_h5(const std::string& h5_path,
                                          const std::string& image_dir = "");

/// Reads a COCO person-keypoints JSON file (`images`, `annotations`, `categories`). Every
/// annotation of category "person" with at least one labelled keypoint (and not `iscrowd`)
/// becomes a sample: centre = box centre, scale = 1.25 · max(box w, box h) / 200, joints from
/// `keypoints` (x, y, v; v = 0 missing, 1 occluded, 2 visible), normalize = 0 (COCO defines no
/// PCK unit). The skeleton comes from the person category's `skeleton` (1-based) when present.
/// Images are `image_dir/file_name`; an empty `image_dir` means `<directory of json>/images`.
std::shared_ptr<FileDataset> read_coco_json(const std::string& json_path,
                                            const std::string& image_dir = "");

/// Reads hourglass's own JSON format for users' data (see docs/custom_dataset.md):
///
///     {
///       "format": "hourglass-pose", "version": 1,
///       "name": "my-data",                                   // optional
///       "joints": ["head", "l-hand", "r-hand"],              // names, any number >= 1
///       "flip_pairs": [[1, 2]],                              // optional, joint indices
///       "skeleton": [[0, 1], [0, 2]],                        // optional, joint indices
///       "sigmas": [0.08, 0.06, 0.06],                        // optional, OKS σ per joint
///       "image_root": "images",                              // optional, relative to the file
///       "samples": [
///         {"image": "a.jpg",                                 // relative to image_root
///          "joints": [[x, y, v], ...],                       // v: 0 missing, 1 occluded,
///                                                            //    2 visible
///          "box": [x, y, w, h],                              // or "center": [x, y] and
///                                                            //    "scale": s (side 200·s px)
///          "normalize": 42.0}                                // optional PCK unit, pixels
///       ]
///     }
///
/// A box gives centre = box centre and scale = 1.25 · max(w, h) / 200, as for COCO.
std::shared_ptr<FileDataset> read_custom_json(const std::string& json_path);

/// The joint set as JSON: {"name", "joints": [names], "flip_pairs": [[a, b]], "skeleton":
/// [[a, b]], "sigmas": [σ] (when known)}, 0-based indices; the same keys as a custom dataset.
nlohmann::json joint_set_to_json(const JointSet& joints);
/// Reads the keys of joint_set_to_json from `j` ("name" optional, default `default_name`) and
/// validates the set; errors name `file` and the field.
JointSet joint_set_from_json(const nlohmann::json& j, const std::string& file,
                             const std::string& default_name = "custom");

/// Opens an annotation file by its content: `.h5` with 16 joints → MPII, 11 → FLIC; `.json`
/// with "format": "hourglass-pose" → custom, with "annotations" → COCO. Images as above.
std::shared_ptr<FileDataset> open_annotations(const std::string& path,
                                              const std::string& image_dir = "");

/// Opens any dataset by a spec: `synthetic:N` or `synthetic:N:SEED` (SyntheticDataset, seed 0
/// by default), else an annotation file as open_annotations.
std::shared_ptr<Dataset> open_dataset(const std::string& spec, const std::string& image_dir = "");

}  // namespace hg::data
