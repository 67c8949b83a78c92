#include "hg/train/distributed.h"

#include <c10/util/Exception.h>
#include <torch/csrc/autograd/variable.h>
#include <torch/torch.h>
#include <torch/csrc/distributed/c10d/FileStore.hpp>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
// The build defines HG_WITH_GLOO / HG_WITH_NCCL where the backends' headers exist; c10d's
// headers expect USE_C10D_*.
#ifdef HG_WITH_GLOO
#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO
#endif
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#ifdef HG_WITH_NCCL
#ifndef USE_C10D_NCCL
#define USE_C10D_NCCL
#endif
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <thread>

namespace hg::train {
namespace {

using Clock = std::chrono::steady_clock;

const char* env_or_null(const char* name) {
  const char* v = std::getenv(name);
  return v && *v ? v : nullptr;
}

// An integer environment variable in [lo, hi]; `fallback` when unset (-1: required).
int env_int(const char* name, int lo, int hi, int fallback = -1) {
  const char* v = env_or_null(name);
  if (!v) {
    TORCH_CHECK(fallback >= 0, "environment variable ", name,
                " is not set: a distributed launch needs it (see docs/distributed.md)");
    return fallback;
  }
  char* end = nullptr;
  const long x = std::strtol(v, &end, 10);
  // SLURM_NTASKS_PER_NODE may read "4(x2)": its leading number is the count.
  TORCH_CHECK(end != v && x >= lo && x <= hi, "environment variable ", name, "='", v,
              "' is not an integer in [", lo, ", ", hi, "]");
  return static_cast<int>(x);
}

bool is_loopback(const std::string& host) {
  return host == "localhost" || host.rfind("127.", 0) == 0 || host == "::1";
}

}  // namespace

namespace {

// The names under which one launcher sets each value, and what to tell a user missing
// MASTER_ADDR under it.
struct LauncherVariables {
  const char* launcher;
  const char *rank, *world_size, *local_rank, *local_world_size;
  int default_port;  // -1: MASTER_PORT required
  const char* master_addr_hint;
};

DistEnv read_launcher(const LauncherVariables& v) {
  DistEnv e;
  e.launcher = v.launcher;
  e.world_size = env_int(v.world_size, 1, 1 << 20);
  e.rank = env_int(v.rank, 0, e.world_size - 1);
  e.local_rank = env_int(v.local_rank, 0, e.world_size - 1, 0);
  e.local_world_size = env_int(v.local_world_size, 1, e.world_size, 1);
  if (e.world_size > 1) {
    const char* addr = env_or_null("MASTER_ADDR");
    TORCH_CHECK(addr, "environment variable MASTER_ADDR is not set: ", v.master_addr_hint);
    e.master_addr = addr;
    e.master_port = env_int("MASTER_PORT", 1, 65535, v.default_port);
    if (const char* file = env_or_null("HG_RENDEZVOUS_FILE")) e.store_file = file;
  }
  return e;
}

}  // namespace

DistEnv DistEnv::from_environment() {
  if (env_or_null("RANK") || env_or_null("WORLD_SIZE"))
    return read_launcher({"torchrun", "RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", -1,
                          "a distributed launch needs the host of rank 0 (torchrun sets it)"});
  if (env_or_null("SLURM_PROCID") && env_or_null("SLURM_NTASKS"))
    return read_launcher({"slurm", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID",
                          "SLURM_NTASKS_PER_NODE", 29500,
                          "under Slurm export MASTER_ADDR=$(scontrol show hostnames "
                          "$SLURM_JOB_NODELIST | head -n 1)"});
  return {};
}

// ---- the process group -----------------------------------------------------------------------

struct Distributed::Impl {
  DistEnv env;
  std::string backend;
  c10::Device device = c10::kCPU;  // where NCCL needs even the small tensors
  std::chrono::milliseconds timeout{0};
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroup> group;
  int64_t failures = 0;

  void wait(const c10::intrusive_ptr<c10d::Work>& work) {
    try {
      work->wait();
    } catch (const std::exception& e) {
      lost(e.what());
    }
  }

  // Names the lost ranks: every rank that sees a collective fail says so in the store and waits a
  // moment for the others; those that never do are dead or hung. If the store itself is gone,
  // rank 0 (its host) is.
  [[noreturn]] void lost(const std::string& what) {
    std::string first_line = what.substr(0, what.find('\n'));
    std::vector<int> missing;
    try {
      const std::string key = "failed/" + std::to_string(failures++) + "/";
      store->set(key + std::to_string(env.rank), std::vector<uint8_t>{1});
      const auto deadline = Clock::now() + std::min(timeout, std::chrono::milliseconds(5000));
      do {
        missing.clear();
        for (int r = 0; r < env.world_size; ++r)
          if (r != env.rank && !store->check({key + std::to_string(r)})) missing.push_back(r);
        if (missing.empty()) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      } while (Clock::now() < deadline);
    } catch (const std::exception&) {
      missing = {0};
    }
    std::string names;
    for (int r : missing) names += (names.empty() ? "" : ", ") + std::to_string(r);
    throw LostRankError(c10::str(missing.empty()
                                     ? std::string("a collective failed on every rank")
                                     : "rank " + names + " of " + std::to_string(env.world_size) +
                                           " stopped answering (it died, hung or lost its network)",
                                 missing == std::vector<int>{0} && env.rank != 0
                                     ? " (rank 0 hosts the rendezvous store at " + env.master_addr +
                                           ":" + std::to_string(env.master_port) + ")"
                                     : "",
                                 "; rank ", env.rank, " stops: ", first_line));
  }
};

namespace {

// A refusal of meet() itself: its message is whole, where a failure of the store is wrapped.
struct RendezvousError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

template <typename... Args>
void refuse_unless(bool ok, const Args&... message) {
  if (!ok) throw RendezvousError(c10::str(message...));
}

// Every rank checks in: rank 0 publishes its launch variables, every other rank compares its own
// with them (and says so in the store when they differ, for rank 0 to report too), each rank
// number is claimed once, and all wait until WORLD_SIZE ranks have arrived, within `deadline`.
void meet(c10d::Store& store, const DistEnv& env, Clock::time_point deadline) {
  const std::string mine = "WORLD_SIZE=" + std::to_string(env.world_size);
  const auto as_text = [](const std::vector<uint8_t>& v) {
    return std::string(v.begin(), v.end());
  };
  const std::string where =
      " at MASTER_ADDR:MASTER_PORT = " + env.master_addr + ":" + std::to_string(env.master_port);
  if (env.rank == 0) {
    store.set("launch", std::vector<uint8_t>(mine.begin(), mine.end()));
  } else {
    const std::string theirs = as_text(store.get("launch"));
    if (theirs != mine) {
      const std::string said = "rank " + std::to_string(env.rank) + " has " + mine;
      store.set("mismatch", std::vector<uint8_t>(said.begin(), said.end()));
      refuse_unless(false, "rank ", env.rank, " was launched with ", mine, " but rank 0", where,
                    " with ", theirs, ": launch every rank with the same WORLD_SIZE");
    }
  }
  refuse_unless(store.add("rank/" + std::to_string(env.rank), 1) == 1,
                "two processes were launched as RANK ", env.rank, where,
                ": give each rank its own RANK from 0 to WORLD_SIZE - 1");
  for (int64_t arrived = store.add("arrived", 1); arrived < env.world_size;
       arrived = store.add("arrived", 0)) {
    if (env.rank == 0 && store.check({"mismatch"}))
      refuse_unless(false, "rank 0 was launched with ", mine, " but ",
                    as_text(store.get("mismatch")), where,
                    ": launch every rank with the same WORLD_SIZE");
    refuse_unless(Clock::now() < deadline, "rank ", env.rank, " of ", env.world_size, ": only ",
                  arrived, " of ", env.world_size, " ranks arrived", where,
                  " within dist_timeout_s: check that every rank started, with the same "
                  "MASTER_ADDR and MASTER_PORT");
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

// The store every rank shares (rank 0 hosts it), once every rank has met there. The whole
// rendezvous runs in a thread of its own, so that no wait in it outlasts dist_timeout_s: not even
// one on a port held by a program that accepts connections and never answers (the thread is
// then left behind; the process is about to end with the error).
c10::intrusive_ptr<c10d::Store> rendezvous(const DistEnv& env, std::chrono::milliseconds timeout,
                                           double timeout_s) {
  struct Outcome {
    std::mutex mutex;
    std::condition_variable done;
    bool finished = false;
    c10::intrusive_ptr<c10d::Store> store;
    std::string error;
    bool whole = false;  // meet()'s own refusal, complete as it is
  };
  auto outcome = std::make_shared<Outcome>();
  const auto deadline = Clock::now() + timeout;
  std::thread([outcome, env, timeout, deadline] {
    c10::intrusive_ptr<c10d::Store> store;
    std::string error;
    bool whole = false;
    try {
      c10::intrusive_ptr<c10d::Store> base;
      if (!env.store_file.empty()) {
        base = c10::make_intrusive<c10d::FileStore>(env.store_file, env.world_size);
        base->setTimeout(timeout);
      } else {
        c10d::TCPStoreOptions so;
        so.port = static_cast<uint16_t>(env.master_port);
        so.isServer = env.rank == 0;
        so.numWorkers = static_cast<size_t>(env.world_size);
        so.waitWorkers = false;  // meet() waits, bounded, and says who is missing
        so.timeout = timeout;
        base = c10::make_intrusive<c10d::TCPStore>(env.master_addr, so);
      }
      store = c10::make_intrusive<c10d::PrefixStore>("hourglass", base);
      meet(*store, env, deadline);
    } catch (const RendezvousError& e) {
      whole = true;
      error = e.what();
    } catch (const c10::Error& e) {
      error = e.what_without_backtrace();
    } catch (const std::exception& e) {
      error = e.what();
    }
    std::lock_guard<std::mutex> lock(outcome->mutex);
    outcome->store = std::move(store);
    outcome->error = error.substr(0, error.find('\n'));
    outcome->whole = whole;
    outcome->finished = true;
    outcome->done.notify_all();
  }).detach();
  std::unique_lock<std::mutex> lock(outcome->mutex);
  const bool finished = outcome->done.wait_until(lock, deadline + std::chrono::seconds(2),
                                                 [&] { return outcome->finished; });
  const std::string where = env.master_addr + ":" + std::to_string(env.master_port);
  TORCH_CHECK(finished, "rank ", env.rank, " of ", env.world_size,
              " could not meet the others at MASTER_ADDR:MASTER_PORT = ", where, " within ",
              timeout_s,
              " s (dist_timeout_s): the program on that port does not answer as rank "
              "0's store would; check MASTER_ADDR and MASTER_PORT");
  TORCH_CHECK(!outcome->whole, outcome->error);
  TORCH_CHECK(outcome->error.empty(), "rank ", env.rank, " of ", env.world_size,
              " could not meet the others at MASTER_ADDR:MASTER_PORT = ", where, " within ",
              timeout_s,
              " s (dist_timeout_s): check that every rank started and that the port is "
              "free and reachable (",
              outcome->error, ")");
  return outcome->store;
}

}  // namespace

Distributed::Distributed(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Distributed::~Distributed() = default;

std::unique_ptr<Distributed> Distributed::connect(const DistEnv& env, const DistOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->env = env;
  impl->device = options.device;
  impl->timeout = std::chrono::milliseconds(static_cast<int64_t>(options.timeout_s * 1000));
  impl->backend =
      options.backend == "auto" ? (options.device.is_cuda() ? "nccl" : "gloo") : options.backend;
  TORCH_CHECK(impl->backend == "gloo" || impl->backend == "nccl",
              "dist_backend must be gloo, nccl or auto, got '", options.backend, "'");
  TORCH_CHECK(impl->backend != "nccl" || options.device.is_cuda(),
              "dist_backend nccl needs a CUDA device (config key device=cuda), got ",
              options.device);
#ifndef HG_WITH_GLOO
  TORCH_CHECK(impl->backend != "gloo",
              "this hourglass was built without Gloo (libgloo-dev was not found at configure "
              "time): install it and rebuild, or use dist_backend=nccl on CUDA");
#endif
#ifndef HG_WITH_NCCL
  TORCH_CHECK(impl->backend != "nccl",
              "this hourglass was built without NCCL (its LibTorch has no CUDA/NCCL): use "
              "dist_backend=gloo, or rebuild against a CUDA LibTorch");
#endif
  impl->store = rendezvous(env, impl->timeout, options.timeout_s);
#ifdef HG_WITH_GLOO
  if (impl->backend == "gloo") {
    auto o = c10d::ProcessGroupGloo::Options::create(impl->timeout);
    // Loopback rendezvous: the ranks talk over loopback too; otherwise the interface named by
    // GLOO_SOCKET_IFNAME (as in PyTorch), else the one this host's name resolves to.
    if (const char* ifname = env_or_null("GLOO_SOCKET_IFNAME"))
      o->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
    else if (is_loopback(env.master_addr))
      o->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
    else
      o->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    o->threads = 2;
    impl->group =
        c10::make_intrusive<c10d::ProcessGroupGloo>(impl->store, env.rank, env.world_size, o);
  }
#endif
#ifdef HG_WITH_NCCL
  if (impl->backend == "nccl") {
    auto o = c10d::ProcessGroupNCCL::Options::create();
    o->timeout = impl->timeout;
    impl->group =
        c10::make_intrusive<c10d::ProcessGroupNCCL>(impl->store, env.rank, env.world_size, o);
  }
#endif
  return std::unique_ptr<Distributed>(new Distributed(std::move(impl)));
}

int Distributed::rank() const {
  return impl_->env.rank;
}
int Distributed::world_size() const {
  return impl_->env.world_size;
}
const std::string& Distributed::backend() const {
  return impl_->backend;
}

void Distributed::broadcast(const std::vector<at::Tensor>& tensors) {
  std::map<at::ScalarType, std::vector<at::Tensor>> by_type;
  for (const auto& t : tensors) by_type[t.scalar_type()].push_back(t);
  for (auto& [type, group] : by_type) {
    std::vector<at::Tensor> flat{
        torch::cat(c10::fmap(group, [](const at::Tensor& t) { return t.detach().reshape(-1); }))};
    impl_->wait(impl_->group->broadcast(flat));
    int64_t offset = 0;
    for (auto& t : group) {
      torch::NoGradGuard no_grad;
      t.copy_(flat[0].narrow(0, offset, t.numel()).view(t.sizes()));
      offset += t.numel();
    }
  }
}

void Distributed::all_reduce_sum(const at::Tensor& tensor) {
  std::vector<at::Tensor> v{tensor};
  impl_->wait(impl_->group->allreduce(v));
}

std::vector<int64_t> Distributed::all_gather(int64_t value) {
  // A sum over one slot per rank: all-reduce is the one collective every backend has for CPU and
  // CUDA tensors alike.
  auto slots = torch::zeros({world_size()}, torch::kLong);
  slots[rank()] = value;
  slots = slots.to(impl_->device);
  all_reduce_sum(slots);
  slots = slots.cpu();
  return std::vector<int64_t>(slots.data_ptr<int64_t>(), slots.data_ptr<int64_t>() + slots.numel());
}

bool Distributed::any(bool flag) {
  auto t = torch::full({1}, flag ? 1 : 0, torch::dtype(torch::kLong).device(impl_->device));
  all_reduce_sum(t);
  return t.item<int64_t>() > 0;
}

// ---- gradients ---------------------------------------------------------------------------------

struct GradientSync::Impl {
  struct Slot {
    at::Tensor param;
    size_t bucket = 0;
    int64_t offset = 0;
    unsigned hook = 0;
    bool ready = false;
  };
  struct Bucket {
    at::Tensor flat;
    size_t size = 0;  // parameters in it
    size_t ready = 0;
    c10::intrusive_ptr<c10d::Work> work;
  };

  Distributed::Impl* dist = nullptr;
  std::vector<Slot> slots;
  std::vector<Bucket> buckets;
  bool armed = false, accumulated = false;
  size_t next_launch = 0;  // buckets are launched in order, the same on every rank

  void on_grad(size_t i, const at::Tensor& grad) {
    if (!armed) return;
    fill(slots[i], grad);
    while (next_launch < buckets.size() && buckets[next_launch].ready == buckets[next_launch].size)
      launch(buckets[next_launch++]);
  }

  // The slot's share of its bucket: this backward's gradient plus what .grad accumulated before.
  void fill(Slot& s, const at::Tensor& grad) {
    auto view = buckets[s.bucket].flat.narrow(0, s.offset, s.param.numel()).view(s.param.sizes());
    const auto& existing = s.param.grad();
    const bool with_existing = accumulated && existing.defined();
    if (grad.defined() && with_existing)
      torch::add_out(view, existing, grad);
    else if (grad.defined())
      view.copy_(grad);
    else if (with_existing)
      view.copy_(existing);
    else
      view.zero_();
    s.ready = true;
    ++buckets[s.bucket].ready;
  }

  void launch(Bucket& b) {
    std::vector<at::Tensor> v{b.flat};
    b.work = dist->group->allreduce(v);
  }
};

GradientSync::GradientSync(Distributed& dist, std::vector<at::Tensor> params, int64_t bucket_bytes)
    : impl_(std::make_unique<Impl>()) {
  impl_->dist = dist.impl_.get();
  // Reverse registration order: roughly the order backward produces the gradients in.
  int64_t filled = bucket_bytes;  // bytes in the open bucket
  for (auto it = params.rbegin(); it != params.rend(); ++it) {
    const int64_t bytes = it->numel() * static_cast<int64_t>(it->element_size());
    if (filled + bytes > bucket_bytes && filled > 0) {
      impl_->buckets.emplace_back();
      filled = 0;
    }
    Impl::Slot s;
    s.param = *it;
    s.bucket = impl_->buckets.size() - 1;
    s.offset = filled / static_cast<int64_t>(it->element_size());
    filled += bytes;
    ++impl_->buckets.back().size;
    impl_->slots.push_back(s);
  }
  std::vector<int64_t> numel(impl_->buckets.size(), 0);
  for (const auto& s : impl_->slots) numel[s.bucket] += s.param.numel();
  for (size_t b = 0; b < impl_->buckets.size(); ++b)
    impl_->buckets[b].flat = torch::zeros({numel[b]}, impl_->slots[0].param.options());
  for (size_t i = 0; i < impl_->slots.size(); ++i) {
    auto* impl = impl_.get();
    impl_->slots[i].hook = impl_->slots[i].param.register_hook(
        [impl, i](const at::Tensor& grad) { impl->on_grad(i, grad); });
  }
}

GradientSync::~GradientSync() {
  for (auto& s : impl_->slots) s.param.remove_hook(s.hook);
}

void GradientSync::arm(bool accumulated) {
  impl_->armed = true;
  impl_->accumulated = accumulated;
  impl_->next_launch = 0;
  for (auto& b : impl_->buckets) b.ready = 0;
  for (auto& s : impl_->slots) s.ready = false;
}

double GradientSync::finish() {
  auto& im = *impl_;
  im.armed = false;
  // A parameter that got no gradient in this backward (unused) contributes what it holds.
  for (auto& s : im.slots)
    if (!s.ready) im.fill(s, at::Tensor());
  const auto start = Clock::now();
  for (; im.next_launch < im.buckets.size(); ++im.next_launch)
    im.launch(im.buckets[im.next_launch]);
  const int world = im.dist->env.world_size;
  for (auto& b : im.buckets) {
    im.dist->wait(b.work);
    b.work.reset();
    b.flat.div_(world);
  }
  const double waited = std::chrono::duration<double>(Clock::now() - start).count();
  for (auto& s : im.slots) {
    const auto avg =
        im.buckets[s.bucket].flat.narrow(0, s.offset, s.param.numel()).view(s.param.sizes());
    if (s.param.grad().defined())
      s.param.mutable_grad().copy_(avg);
    else
      s.param.mutable_grad() = avg.clone();
  }
  return waited;
}

size_t GradientSync::buckets() const {
  return impl_->buckets.size();
}

int64_t tensors_hash(const std::vector<at::Tensor>& tensors) {
  uint64_t h = 1469598103934665603ull;
  for (const auto& t : tensors) {
    const auto c = t.detach().cpu().contiguous();
    const auto* p = static_cast<const unsigned char*>(c.data_ptr());
    const size_t n = c.numel() * c.element_size();
    for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ull;
  }
  return static_cast<int64_t>(h);
}

}  // namespace hg::train
