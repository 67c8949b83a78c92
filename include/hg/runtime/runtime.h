#pragma once
/// Process-wide settings every entry point shares: compute threads and devices.

#include <c10/core/Device.h>

#include <string>

namespace hg::runtime {

/// The machine's cores (std::thread::hardware_concurrency, at least 1).
int cores();

/// The thread count a setting means: `requested` when > 0, else cores() (0 = all cores, the
/// rule of every `threads` option in the library and of the tool's --threads).
int resolve_threads(int requested);

/// Sets LibTorch's intra-op thread count to resolve_threads(requested) (Debian's LibTorch starts
/// with one) and flushes denormal floats to zero on the CPU.
void apply_threads(int requested);

/// Makes LibTorch's CPU operations called from this thread run on it alone. For threads that do
/// light tensor work beside one thread that runs the network (a server's request threads): with
/// OpenMP every calling thread gets its own team of workers, and once the process has more
/// workers than cores OpenMP stops spinning between parallel regions, which made every one of
/// the network's regions wait for a sleeping thread to wake.
void serial_tensor_ops_in_this_thread();

/// Ends the OpenMP worker threads this thread started (they are made again by its next parallel
/// region), so that another thread's team has the cores to itself. No-op inside a parallel
/// region or without OpenMP.
void release_thread_team();

/// Parses "cpu", "cuda" or "cuda:N". A CUDA device without CUDA support in LibTorch, or without
/// a GPU, is an error that says so.
c10::Device parse_device(const std::string& name);

}  // namespace hg::runtime
