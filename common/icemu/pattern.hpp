// Known file content for guest write/read steps: byte at file offset o is
//   byte (o % 8) (little-endian) of splitmix64(seed + o / 8).
// Host tools (runner, checker) compute the same plaintext from (seed, offset). Shared by the
// guest program and the host side, so it lives in common/, outside either.
#pragma once
#include <cstddef>
#include <cstdint>

namespace icemu::pattern {

constexpr std::uint64_t splitmix64(std::uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

constexpr std::uint8_t byte_at(std::uint64_t seed, std::uint64_t offset) {
    return static_cast<std::uint8_t>(splitmix64(seed + offset / 8) >> (8 * (offset % 8)));
}

// Fill buf[0..len) with the pattern for file offsets [offset, offset+len).
inline void fill(std::uint64_t seed, std::uint64_t offset, std::uint8_t* buf, std::size_t len) {
    std::size_t i = 0;
    for (; i < len && (offset + i) % 8 != 0; ++i)
        buf[i] = byte_at(seed, offset + i);
    for (; i + 8 <= len; i += 8) {
        std::uint64_t w = splitmix64(seed + (offset + i) / 8);
        for (unsigned b = 0; b < 8; ++b)
            buf[i + b] = static_cast<std::uint8_t>(w >> (8 * b));
    }
    for (; i < len; ++i)
        buf[i] = byte_at(seed, offset + i);
}

} // namespace icemu::pattern
