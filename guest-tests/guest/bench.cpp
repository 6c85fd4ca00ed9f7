// Timed I/O for the benchmarks (bench/icemu-bench, docs/performance.md): sequential O_DIRECT
// writes or reads of a block device or of files, timed in the guest with CLOCK_MONOTONIC so
// the host's scheduling of the QEMU process and the runner's round trips are not counted.
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <memory>
#include <unistd.h>
#include <vector>

#include "ops.hpp"

namespace icemu::guest {
namespace {

double mono_s() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

} // namespace

// bench_io: paths (array; or path), mode "write"|"read", size (bytes per path), block (bytes per
// I/O, default 1 MiB) [, offset=0, direct=true, fsync=true, loops=1: passes over the range, so a
// short file still gives a long enough measurement]. With several paths the I/Os go
// round-robin over them (block i to path i % n at offset + (i / n) * block): with per-file
// keys that makes every I/O need another key (keyslot pressure). Writes create missing files
// (without truncating, so a repeated write overwrites the same blocks). The buffer holds a
// fixed pattern and is not verified: this op measures, the conformance ops check contents.
// Reply: bytes, ops, seconds (I/O loop, plus the final fsync of every path for writes).
json op_bench_io(const json& req) {
    std::vector<std::string> paths;
    if (req.contains("paths")) {
        for (const auto& p : req.at("paths"))
            paths.push_back(p.get<std::string>());
    } else {
        paths.push_back(arg_str(req, "path"));
    }
    if (paths.empty())
        throw OpError(EINVAL, "bench_io: no paths");
    const std::string mode = arg_str(req, "mode");
    if (mode != "write" && mode != "read")
        throw OpError(EINVAL, "bench_io: mode must be write or read");
    const bool write = mode == "write";
    const std::uint64_t size = arg_u64(req, "size");
    const std::uint64_t block = arg_u64(req, "block", 1 << 20);
    const std::uint64_t offset = arg_u64(req, "offset", 0);
    const bool direct = arg_bool(req, "direct", true);
    const std::uint64_t loops = arg_u64(req, "loops", 1);
    if (block == 0 || block > (64u << 20) || size % block || offset % 4096 || block % 512 ||
        loops == 0)
        throw OpError(
            EINVAL, "bench_io: size must be a multiple of block (512 B .. 64 MiB), offset of 4096");
    std::vector<Fd> fds;
    for (const auto& p : paths)
        fds.emplace_back(p, (write ? O_WRONLY | O_CREAT : O_RDONLY) | (direct ? O_DIRECT : 0));
    AlignedBuf buf(block);
    std::uint8_t* b = buf.data();
    for (std::uint64_t i = 0; i < block; ++i)
        b[i] = static_cast<std::uint8_t>(i * 131 + 7);
    const std::uint64_t per_path = size / block;
    const std::size_t n = fds.size();
    double t0 = mono_s();
    for (std::uint64_t i = 0; i < per_path * n * loops; ++i) {
        const int fd = fds[i % n].get();
        const auto off = static_cast<off_t>(offset + (i / n % per_path) * block);
        ssize_t r = write ? ::pwrite(fd, b, block, off) : ::pread(fd, b, block, off);
        if (r != static_cast<ssize_t>(block)) {
            if (r >= 0)
                errno = EIO;
            throw_errno("bench_io " + mode + " " + paths[i % n] + " at " + std::to_string(off));
        }
    }
    if (write && arg_bool(req, "fsync", true))
        for (std::size_t k = 0; k < n; ++k)
            if (::fsync(fds[k].get()) < 0)
                throw_errno("fsync " + paths[k]);
    double secs = mono_s() - t0;
    return {{"bytes", size * n * loops}, {"ops", per_path * n * loops}, {"seconds", secs}};
}

} // namespace icemu::guest
