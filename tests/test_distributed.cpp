// Data-parallel training: 2 Gloo ranks on 127.0.0.1 against one process with accumulate=2, the
// launch conventions, and a lost rank.

#include "hg/data/loader.h"
#include "hg/data/synthetic.h"
#include "hg/io/checkpoint.h"
#include "hg/train/distributed.h"
#include "hg/train/trainer.h"

#include "test_util.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <thread>
#include <utility>

namespace fs = std::filesystem;
using hg::train::TrainConfig;
using hg::train::Trainer;

namespace {

// A tiny model (2 stacks, 16 features, 32 px) on one thread per rank: results do not depend on
// how a machine's threads split the work.
TrainConfig tiny() {
  auto c = hg::test::tiny_train_config();
  c.epochs = 1;
  c.iters_per_epoch = 6;
  c.amp = hg::train::Amp::kOff;
  c.threads = 1;
  c.dist_check_sync = true;
  c.dist_timeout_s = 30;
  return c;
}

std::string write_config(const TrainConfig& c) {
  const auto path = hg::test::scratch_dir() / "config_in.json";
  std::ofstream(path) << c.to_json().dump();
  return path.string();
}

std::vector<nlohmann::json> log_lines(const fs::path& dir, const std::string& type) {
  std::vector<nlohmann::json> lines;
  std::ifstream in(dir / "log.jsonl");
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line);
    if (j["type"] == type) lines.push_back(j);
  }
  return lines;
}

// A TCP socket bound to a free port of 127.0.0.1, and the port.
std::pair<int, int> bound_loopback_socket() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  EXPECT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  return {fd, ntohs(addr.sin_port)};
}

int free_port() {
  const auto [fd, port] = bound_loopback_socket();
  ::close(fd);
  return port;
}

// The environment torchrun gives rank `rank` of 2 (as a shell prefix).
std::string torchrun_env(int rank, int port) {
  return "env RANK=" + std::to_string(rank) + " LOCAL_RANK=" + std::to_string(rank) +
         " WORLD_SIZE=2 LOCAL_WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=" +
         std::to_string(port) + " ";
}

double max_difference(const fs::path& a, const fs::path& b) {
  const auto x = hg::io::read_checkpoint((a / "last.hg").string());
  const auto y = hg::io::read_checkpoint((b / "last.hg").string());
  EXPECT_EQ(x.state.size(), y.state.size());
  double worst = 0;
  for (const auto& [name, t] : x.state)
    worst = std::max(
        worst,
        (t.to(torch::kDouble) - y.state.at(name).to(torch::kDouble)).abs().max().item<double>());
  return worst;
}

// Waits (bounded, so that a broken build fails rather than hangs) until `done` holds.
bool wait_until(const std::function<bool()>& done, double seconds) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (!done()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return true;
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

TEST(Distributed, TwoGlooRanksStayIdenticalAndMatchOneProcessWithAccumulate) {
  auto c = tiny();
  c.val_dataset = "synthetic:15:7";  // split 7 + 8 between the ranks
  const auto config = write_config(c);
  const auto ranks = hg::test::scratch_dir() / "ranks";
  const auto run =
      hg::test::run_tool("train --nproc 2 --config " + config + " --run-dir " + ranks.string());
  ASSERT_EQ(run.code, 0) << run.out;
  EXPECT_NE(run.out.find("[rank 0] training"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("2 ranks (gloo"), std::string::npos) << run.out;

  // After every step both ranks held bit-identical weights and buffers, and the loss fell.
  const auto steps = log_lines(ranks, "step");
  ASSERT_EQ(steps.size(), 6u);  // rank 0 alone wrote the log
  for (const auto& s : steps) {
    ASSERT_EQ(s["param_hashes"].size(), 2u) << s.dump();
    EXPECT_EQ(s["param_hashes"][0], s["param_hashes"][1]) << "step " << s["step"];
  }
  EXPECT_LT(steps.back()["loss"].get<double>(), steps.front()["loss"].get<double>());
  // Rank 0 alone wrote the run folder (and holds its lock file).
  std::set<std::string> files;
  for (const auto& f : fs::directory_iterator(ranks)) files.insert(f.path().filename().string());
  EXPECT_EQ(files,
            (std::set<std::string>{".lock", "config.json", "log.jsonl", "last.hg", "best.hg"}));

  // The validation the ranks split and gathered is that of one process on the checkpoint.
  const auto epochs = log_lines(ranks, "epoch");
  ASSERT_EQ(epochs.size(), 1u);
  const auto eval_path = hg::test::scratch_dir() / "eval.json";
  const auto eval = hg::test::run_tool(
      "--threads 1 eval synthetic:15:7 --weights " + (ranks / "last.hg").string() +
      " --backend torch --no-flip --per-stack --batch 8 --json " + eval_path.string());
  ASSERT_EQ(eval.code, 0) << eval.out;
  const auto scored = hg::test::read_json(eval_path);
  EXPECT_EQ(scored["evaluated"], 15);
  ASSERT_EQ(epochs[0]["val_pckh@0.5"].size(), 2u) << epochs[0].dump();
  for (int s = 0; s < 2; ++s)
    EXPECT_DOUBLE_EQ(epochs[0]["val_pckh@0.5"][s]["mean"].get<double>(),
                     scored["per_stack"][s]["pckh@0.5"]["mean"].get<double>())
        << "stack " << s + 1;

  // One process taking each step in 2 micro-batches takes the same steps.
  auto one = c;
  one.accumulate = 2;
  const auto accumulated = hg::test::scratch_dir() / "accumulate";
  EXPECT_EQ(Trainer(one, accumulated.string()).run().step, 6);
  EXPECT_LE(max_difference(ranks, accumulated), 1e-5);

  // Launched as torchrun would (environment variables only): the same weights.
  const int port = free_port();
  const auto env_run = hg::test::scratch_dir() / "env";
  const std::string args =
      std::string(HG_BINARY) + " train --config " + config + " --run-dir " + env_run.string();
  const auto launched =
      hg::test::run_command(torchrun_env(1, port) + args + " & " + torchrun_env(0, port) + args +
                            "; r0=$?; wait $!; exit $((r0 | $?))");
  ASSERT_EQ(launched.code, 0) << launched.out;
  EXPECT_EQ(max_difference(ranks, env_run), 0.0);
}

TEST(Distributed, LoaderShardsTogetherGiveExactlyTheBatchesOfOneLoader) {
  auto data = std::make_shared<hg::data::SyntheticDataset>(40, 3);
  hg::data::LoaderOptions o;
  o.batch_size = 8;
  o.threads = 1;
  o.seed = 5;
  o.sample.res = 32;
  hg::data::Loader whole(data, o);
  std::vector<std::unique_ptr<hg::data::Loader>> shards;
  for (int r = 0; r < 4; ++r) {
    o.shards = 4;
    o.shard = r;
    shards.push_back(std::make_unique<hg::data::Loader>(data, o));
  }
  for (int64_t number : {0, 3}) {
    const auto b = whole.build_batch(2, number);
    std::vector<at::Tensor> parts;
    for (auto& l : shards) parts.push_back(l->build_batch(2, number).input);
    EXPECT_TRUE(torch::equal(torch::cat(parts), b.input)) << "batch " << number;
  }
  o.shards = 3;
  o.shard = 0;
  EXPECT_ERROR_HAS(hg::data::Loader(data, o), "shard 0 of 3 does not divide batch size 8");
}

TEST(Distributed, RefusesABatchThatTheRanksCannotSplit) {
  ::setenv("RANK", "0", 1);
  ::setenv("WORLD_SIZE", "3", 1);
  ::setenv("MASTER_ADDR", "127.0.0.1", 1);
  ::setenv("MASTER_PORT", "29500", 1);
  auto c = tiny();
  EXPECT_ERROR_HAS(Trainer(c, (hg::test::scratch_dir() / "r").string()).run(), "batch_size 8",
                   "not divisible by the 3 ranks");
  c.accumulate = 3;
  EXPECT_ERROR_HAS(c.validate(), "batch_size 8 is not divisible by accumulate 3");
  for (const char* v : {"RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"}) ::unsetenv(v);
}

TEST(Distributed, LaunchEnvironmentIsReadAsTorchrunAndSlurmSetIt) {
  ::setenv("SLURM_PROCID", "3", 1);
  ::setenv("SLURM_NTASKS", "8", 1);
  ::setenv("SLURM_LOCALID", "1", 1);
  ::setenv("SLURM_NTASKS_PER_NODE", "2(x4)", 1);
  EXPECT_ERROR_HAS(hg::train::DistEnv::from_environment(), "MASTER_ADDR is not set");
  ::setenv("MASTER_ADDR", "node01", 1);
  auto e = hg::train::DistEnv::from_environment();
  EXPECT_EQ(e.launcher, "slurm");
  EXPECT_EQ(e.rank, 3);
  EXPECT_EQ(e.world_size, 8);
  EXPECT_EQ(e.local_rank, 1);
  EXPECT_EQ(e.local_world_size, 2);
  EXPECT_EQ(e.master_port, 29500);
  // torchrun's variables take precedence.
  ::setenv("RANK", "9", 1);
  ::setenv("WORLD_SIZE", "4", 1);
  ::setenv("MASTER_PORT", "1234", 1);
  EXPECT_ERROR_HAS(hg::train::DistEnv::from_environment(), "RANK='9'", "[0, 3]");
  ::setenv("RANK", "2", 1);
  e = hg::train::DistEnv::from_environment();
  EXPECT_EQ(e.launcher, "torchrun");
  EXPECT_EQ(e.rank, 2);
  EXPECT_EQ(e.master_port, 1234);
  for (const char* v : {"SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID", "SLURM_NTASKS_PER_NODE",
                        "MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE"})
    ::unsetenv(v);
  EXPECT_FALSE(hg::train::DistEnv::from_environment().distributed());
}

TEST(Distributed, ALostRankStopsTheOtherNamingItAndTheRunResumesOnOneProcess) {
  auto c = tiny();
  c.iters_per_epoch = 2;  // a checkpoint every 2 steps
  c.epochs = 1000;        // far more than the run lives
  c.dist_timeout_s = 20;
  c.dist_check_sync = false;
  const auto config = write_config(c);
  const auto dir = hg::test::scratch_dir() / "run";
  const auto scratch = hg::test::scratch_dir();
  const int port = free_port();
  const std::string args =
      std::string(HG_BINARY) + " train --config " + config + " --run-dir " + dir.string();
  // Both in the background; rank 0's exit code lands in a file, rank 1's pid in another.
  const auto started = hg::test::run_command(
      "(" + torchrun_env(0, port) + args + " > " + (scratch / "rank0.out").string() +
      " 2>&1; echo $? > " + (scratch / "rank0.rc").string() + ") > /dev/null 2>&1 & " +
      torchrun_env(1, port) + args + " > /dev/null 2>&1 & echo $! > " +
      (scratch / "rank1.pid").string());
  ASSERT_EQ(started.code, 0) << started.out;
  ASSERT_TRUE(wait_until([&] { return log_lines(dir, "epoch").size() >= 2; }, 60))
      << read_text(scratch / "rank0.out");
  const int rank1 = std::stoi(read_text(scratch / "rank1.pid"));
  ASSERT_EQ(::kill(rank1, SIGKILL), 0);

  // The survivor stops on its own (within the timeout), naming the lost rank.
  ASSERT_TRUE(wait_until(
      [&] { return fs::exists(scratch / "rank0.rc") && !read_text(scratch / "rank0.rc").empty(); },
      c.dist_timeout_s + 30));
  EXPECT_NE(std::stoi(read_text(scratch / "rank0.rc")), 0);
  const auto out = read_text(scratch / "rank0.out");
  EXPECT_NE(out.find("rank 1 of 2 stopped answering"), std::string::npos) << out;
  EXPECT_NE(out.find("--resume " + dir.string()), std::string::npos) << out;

  // Rank 0's last checkpoint is intact: one process continues and finishes the run.
  const auto last = hg::io::read_checkpoint((dir / "last.hg").string());
  const int64_t done = last.meta["train"]["epoch"];
  const auto resumed = hg::test::run_tool("train --resume " + dir.string() +
                                          " --set epochs=" + std::to_string(done + 1));
  ASSERT_EQ(resumed.code, 0) << resumed.out;
  EXPECT_NE(resumed.out.find("finished after " + std::to_string(done + 1) + " epochs"),
            std::string::npos)
      << resumed.out;
}

// The rendezvous (issue 35): every wait bounded by dist_timeout_s, launch variables compared
// through the store before Gloo sees them, each failure named.
TEST(Rendezvous, EveryWaitIsBoundedAndEveryDisagreementNamed) {
  auto c = tiny();
  c.dist_timeout_s = 2;
  const auto config = write_config(c);
  const auto dir = hg::test::scratch_dir();
  const auto train = [&](const std::string& name) {
    return std::string(HG_BINARY) + " train --config " + config + " --run-dir " +
           (dir / name).string();
  };
  const auto timed = [](const std::string& command) {
    const auto start = std::chrono::steady_clock::now();
    auto r = hg::test::run_command("timeout 60 " + command);
    const double s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return std::make_pair(r, s);
  };

  // Rank 0 alone: the documented message, within about dist_timeout_s.
  const auto [alone, alone_s] = timed(torchrun_env(0, free_port()) + train("alone"));
  EXPECT_EQ(alone.code, 1) << alone.out;
  EXPECT_NE(alone.out.find("rank 0 of 2: only 1 of 2 ranks arrived at MASTER_ADDR:MASTER_PORT = "
                           "127.0.0.1:"),
            std::string::npos)
      << alone.out;
  EXPECT_LT(alone_s, 15) << alone.out;

  // Ranks that disagree on WORLD_SIZE (4 also splits the batch of 8): both say so, naming both.
  const std::string port = std::to_string(free_port());
  const std::string rank0 = "env RANK=0 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=" + port;
  const std::string rank1 = "env RANK=1 WORLD_SIZE=4 MASTER_ADDR=127.0.0.1 MASTER_PORT=" + port;
  const auto [disagree, disagree_s] =
      timed("sh -c '" + rank1 + " " + train("r1") + " > " + (dir / "r1.out").string() + " 2>&1 & " +
            rank0 + " " + train("r0") + "; r=$?; wait; exit $r'");
  EXPECT_EQ(disagree.code, 1) << disagree.out;
  EXPECT_NE(disagree.out.find("rank 0 was launched with WORLD_SIZE=2 but rank 1 has WORLD_SIZE=4"),
            std::string::npos)
      << disagree.out;
  std::ifstream in(dir / "r1.out");
  const std::string r1((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(r1.find("rank 1 was launched with WORLD_SIZE=4 but rank 0 at MASTER_ADDR:MASTER_PORT"),
            std::string::npos)
      << r1;
  EXPECT_LT(disagree_s, 20);

  // A port held by a program that accepts and never answers: rank 1 stops within the timeout.
  const auto [mute, mute_port] = bound_loopback_socket();
  ASSERT_EQ(::listen(mute, 8), 0);
  const auto [hung, hung_s] = timed(torchrun_env(1, mute_port) + train("mute"));
  ::close(mute);
  EXPECT_EQ(hung.code, 1) << hung.out;
  EXPECT_NE(hung.out.find("rank 1 of 2 could not meet the others at MASTER_ADDR:MASTER_PORT"),
            std::string::npos)
      << hung.out;
  EXPECT_LT(hung_s, 15) << hung.out;
}

}  // namespace
