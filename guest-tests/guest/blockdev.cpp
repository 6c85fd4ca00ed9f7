// Raw block-device I/O with the known pattern (common/icemu/pattern.hpp). The pattern is
// addressed by DEVICE offset: byte o of the device written by write_dev with seed s is pattern byte
// (s, o), so a host tool can compute the plaintext of any sector of a dm device (e.g. under
// dm-inlinecrypt) from the seed alone.
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <memory>
#include <unistd.h>

#include "icemu/pattern.hpp"
#include "ops.hpp"

namespace icemu::guest {
namespace {

constexpr std::size_t kChunk = 1 << 20;

// The arguments write_dev and read_dev share: dev, offset (bytes), size, seed [, direct=true].
struct DevRange {
    std::string dev;
    std::uint64_t off, size, seed;
    bool direct;

    DevRange(const char* op, const json& req)
        : dev(arg_str(req, "dev")), off(arg_u64(req, "offset", 0)), size(arg_u64(req, "size")),
          seed(arg_u64(req, "seed", 0)), direct(arg_bool(req, "direct", true)) {
        if (size == 0)
            throw OpError(EINVAL, std::string(op) + ": size must be > 0");
        if (direct && (off % 512 || size % 512))
            throw OpError(EINVAL, std::string(op) +
                                      ": offset and size must be multiples of 512 with direct I/O");
    }
    int flags(int mode) const { return mode | (direct ? O_DIRECT : 0); }
};

} // namespace

// write_dev: dev, offset (bytes), size, seed [, direct=true, fsync=true]. Writes the pattern
// for device offsets [offset, offset+size) (O_DIRECT by default: the bios reach the device
// during the step).
json op_write_dev(const json& req) {
    const DevRange a("write_dev", req);
    const std::string& dev = a.dev;
    const std::uint64_t off = a.off, size = a.size, seed = a.seed;
    Fd f(dev, a.flags(O_WRONLY));
    AlignedBuf buf(kChunk);
    double t0 = uptime_s();
    for (std::uint64_t done = 0; done < size;) {
        std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(kChunk, size - done));
        pattern::fill(seed, off + done, buf.data(), n);
        ssize_t w = ::pwrite(f.get(), buf.data(), n, static_cast<off_t>(off + done));
        if (w <= 0)
            throw_errno("write " + dev + " at " + std::to_string(off + done));
        done += static_cast<std::uint64_t>(w);
    }
    if (arg_bool(req, "fsync", true) && ::fsync(f.get()) < 0)
        throw_errno("fsync " + dev);
    return {{"bytes", size}, {"seconds", uptime_s() - t0}};
}

// read_dev: dev, offset, size, seed [, direct=true]. Verifies the pattern written by
// write_dev; a mismatch fails with EBADMSG and the first differing device offset.
json op_read_dev(const json& req) {
    const DevRange a("read_dev", req);
    const std::string& dev = a.dev;
    const std::uint64_t off = a.off, size = a.size, seed = a.seed;
    Fd f(dev, a.flags(O_RDONLY));
    AlignedBuf got(kChunk);
    std::unique_ptr<std::uint8_t[]> want(new std::uint8_t[kChunk]);
    for (std::uint64_t done = 0; done < size;) {
        std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(kChunk, size - done));
        ssize_t r = ::pread(f.get(), got.data(), n, static_cast<off_t>(off + done));
        if (r <= 0)
            throw_errno("read " + dev + " at " + std::to_string(off + done));
        auto m = static_cast<std::size_t>(r);
        pattern::fill(seed, off + done, want.get(), m);
        if (std::memcmp(got.data(), want.get(), m) != 0) {
            std::size_t i = 0;
            while (got.data()[i] == want[i])
                ++i;
            throw OpError(EBADMSG, "read_dev " + dev + ": pattern mismatch at device offset " +
                                       std::to_string(off + done + i));
        }
        done += m;
    }
    return {{"bytes", size}, {"verified", true}};
}

} // namespace icemu::guest
