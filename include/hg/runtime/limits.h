#pragma once
/// The limits every reader of hourglass enforces, in one place (docs/limits.md). An input beyond
/// one of them is refused with an error naming the file, key or value, before anything of its
/// size is allocated.

#include <cstdint>

namespace hg::limits {

/// Deepest nesting of arrays and objects in any JSON file or value read (configs, `--set`,
/// annotations, `--boxes`, predictions, checkpoint metadata, HTTP requests). Real files nest
/// 4 or 5 levels.
constexpr int kMaxJsonDepth = 64;
/// Deepest nesting of lists, tuples and dicts in a checkpoint's pickle (a training checkpoint
/// nests about 5).
constexpr int kMaxPickleDepth = 64;
/// Most dimensions of a tensor in a checkpoint.
constexpr int64_t kMaxTensorRank = 8;

/// Decoded pixels (width × height) an image may have unless told otherwise (`--max-pixels`):
/// 100 megapixels, 300 MB as RGB.
constexpr int64_t kDefaultMaxImagePixels = 100'000'000;

/// Longest side of an image, in pixels: OpenCV's warping (the crops) takes images under 32767
/// pixels a side, so a thin image within the pixel budget (16×43020) is refused before decoding.
constexpr int64_t kMaxImageSide = 32766;
/// Largest image file read, in bytes (checked before reading: 100 M pixels of PNG fit well).
constexpr uint64_t kMaxImageFileBytes = uint64_t{1} << 30;

/// Annotation coordinates, sizes and scales (pixels) are finite and at most this in magnitude.
constexpr double kMaxCoordinate = 1e7;
/// Most numbers (or strings) in one dataset of an MPII/FLIC HDF5 annotation file (the real MPII
/// training set holds under a million).
constexpr uint64_t kMaxAnnotationValues = 50'000'000;
/// Most people of a synthetic dataset ("synthetic:N").
constexpr int64_t kMaxSyntheticPeople = 100'000'000;

/// Architecture values (checkpoint config, `--set model.*`, training configs). Stacks, depth and
/// residuals are bounded by the model itself (1..16, 1..8, 1..8).
constexpr int64_t kMaxFeatures = 2048;
constexpr int64_t kMaxJoints = 1024;
constexpr int64_t kMaxStemWidth = 2048;
/// Most trainable parameters of a model a checkpoint may declare (4 GB of float32; the paper's
/// 8-stack network has 25 million), checked before the model is built.
constexpr int64_t kMaxParameters = 1'000'000'000;
/// Largest network input side in pixels (`--size`, checkpoint meta `input_size`, training
/// `input_size`): 2048² at 256 features already needs several GB per stack.
constexpr int64_t kMaxInputSize = 2048;

}  // namespace hg::limits
