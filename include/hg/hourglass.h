#pragma once
/// hourglass: stacked hourglass networks for human pose estimation, as a C++ library.
///
/// The front door is hg::infer::Predictor (load a checkpoint, predict the people of an image);
/// hg::train::Trainer trains a model on a dataset (hg::data::open_dataset) and
/// hg::eval::predict_dataset scores one. Link the CMake target hourglass::hg
/// (`find_package(hourglass)`); examples/ holds two programs to start from.

#include "hg/data/dataset.h"
#include "hg/data/readers.h"
#include "hg/eval/coco_report.h"
#include "hg/eval/evaluate.h"
#include "hg/eval/pck.h"
#include "hg/eval/pck_report.h"
#include "hg/infer/bench.h"
#include "hg/infer/predictor.h"
#include "hg/infer/results.h"
#include "hg/io/checkpoint.h"
#include "hg/model/hourglass.h"
#include "hg/runtime/runtime.h"
#include "hg/train/config.h"
#include "hg/train/trainer.h"
