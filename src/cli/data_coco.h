#pragma once
/// The COCO part of `hourglass data stats` (src/cli/data_coco.cpp).

#include <string>

namespace hg::cli {

/// Prints what a COCO keypoints file holds beyond the people the reader uses: images, person
/// annotations, crowds and people without labelled joints (both left out of training and ignored
/// by the OKS evaluation), and of the people used their boxes, labelled joints per person and
/// OKS area ranges (small < 32², medium 32²..96², large > 96² by the "area" field). Throws naming
/// the file when it is not a COCO keypoints file.
void print_coco_stats(const std::string& json_path);

}  // namespace hg::cli
