#pragma once
/// Data-parallel training on PyTorch's c10d: rendezvous through a c10d::TCPStore, collectives on
/// a Gloo (CPU) or NCCL (CUDA) process group, and gradient averaging in buckets launched from
/// autograd hooks while the backward pass still runs (what PyTorch's DistributedDataParallel
/// does). The c10d headers stay in distributed.cpp; this header holds only our types.
///
/// A job is launched as PyTorch jobs are: torchrun, a Kubeflow PyTorchJob or Slurm set the
/// environment read by DistEnv::from_environment, or `hourglass train --nproc N` starts N local
/// workers with it.

#include <ATen/Tensor.h>
#include <c10/core/Device.h>

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace hg::train {

/// Where this process stands in a job, as its launcher described it.
struct DistEnv {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;                     ///< rank among the workers of this machine
  int local_world_size = 1;               ///< workers on this machine (shares its cores)
  std::string master_addr = "127.0.0.1";  ///< host of rank 0, which serves the TCPStore
  int master_port = 29500;
  std::string launcher = "none";  ///< "torchrun" (RANK/WORLD_SIZE/...), "slurm" or "none"
  /// `--nproc`'s workers meet in this file (HG_RENDEZVOUS_FILE, a c10d::FileStore) instead of
  /// a TCPStore, so that a job on one machine opens no listening socket; "" otherwise.
  std::string store_file;

  bool distributed() const { return world_size > 1; }

  /// Reads RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR and MASTER_PORT (torchrun,
  /// PyTorchJob, `--nproc`); when RANK is unset, SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID and
  /// SLURM_NTASKS_PER_NODE with MASTER_ADDR and MASTER_PORT (default 29500). Neither: one
  /// process. Throws, naming the variable, on a value that is missing or out of range.
  static DistEnv from_environment();
};

/// How to connect.
struct DistOptions {
  std::string backend = "auto";  ///< gloo | nccl | auto (nccl on CUDA, else gloo)
  double timeout_s = 300;        ///< a collective or the rendezvous waiting longer fails
  c10::Device device = c10::kCPU;
};

/// A rank stopped answering (died, hung or lost its network): the message names it.
class LostRankError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// One process group over all ranks of a job. Every rank must call the collectives in the same
/// order. A collective that fails or times out throws LostRankError naming the rank(s) that did
/// not report the failure too (those are the ones lost).
class Distributed {
 public:
  /// Rendezvous (rank 0 serves the store on master_addr:master_port) and the process group.
  /// Throws when the backend is not built in, naming what is missing.
  static std::unique_ptr<Distributed> connect(const DistEnv& env, const DistOptions& options);
  ~Distributed();
  Distributed(const Distributed&) = delete;
  Distributed& operator=(const Distributed&) = delete;

  int rank() const;
  int world_size() const;
  /// "gloo" or "nccl".
  const std::string& backend() const;

  /// Rank 0's values into every rank's tensors, in place (any dtypes; flattened per dtype into
  /// one message each).
  void broadcast(const std::vector<at::Tensor>& tensors);
  /// Element-wise sum over the ranks, in place.
  void all_reduce_sum(const at::Tensor& tensor);
  /// Every rank's `value`, in rank order.
  std::vector<int64_t> all_gather(int64_t value);
  /// True on every rank when `flag` is true on any.
  bool any(bool flag);

 private:
  struct Impl;
  friend class GradientSync;
  explicit Distributed(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

/// Averages the gradients of `params` over the ranks during backward: each parameter's hook
/// copies its gradient into a bucket (about `bucket_bytes`: smaller than DDP's 25 MB, so that the
/// small models trained on CPUs get several buckets to overlap; parameters in reverse order, as
/// their gradients arrive), a full bucket is all-reduced asynchronously while backward goes on,
/// and finish() waits for the rest and writes the averages into the parameters' .grad.
class GradientSync {
 public:
  GradientSync(Distributed& dist, std::vector<at::Tensor> params, int64_t bucket_bytes = 4 << 20);
  ~GradientSync();
  GradientSync(const GradientSync&) = delete;
  GradientSync& operator=(const GradientSync&) = delete;

  /// Makes the next backward pass synchronise. `accumulated`: .grad already holds earlier
  /// micro-batches' gradients, which are then part of what is averaged.
  void arm(bool accumulated);
  /// After that backward: waits for every bucket and sets each .grad to the mean over ranks.
  /// Returns the seconds spent waiting (communication that backward did not hide).
  double finish();

  /// Buckets in use.
  size_t buckets() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// A 64-bit FNV-1a hash of the tensors' bytes (in logical element order): equal hashes across
/// ranks mean bit-identical values.
int64_t tensors_hash(const std::vector<at::Tensor>& tensors);

}  // namespace hg::train
