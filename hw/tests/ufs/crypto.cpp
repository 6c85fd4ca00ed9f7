#include "crypto.hpp"

#include <algorithm>
#include <bit>

namespace icemu::ufs {

CryptoCapEntry decode_cryptocap(std::uint32_t v) {
    return {static_cast<std::uint8_t>(v & 0xff), static_cast<std::uint8_t>((v >> 8) & 0xff),
            static_cast<std::uint8_t>((v >> 16) & 0xff)};
}

CryptoCapabilities read_crypto_capabilities(UfsHost& host) {
    CryptoCapabilities c;
    c.ccap = host.rreg(reg::kCcap);
    c.cc = c.ccap & 0xff;
    c.keyslots = ((c.ccap >> 8) & 0xff) + 1;
    c.cfgptr = (c.ccap >> 24) & 0xff;
    for (unsigned i = 0; i < c.cc; ++i) {
        c.caps.push_back(decode_cryptocap(host.rreg(reg::kCryptoCap0 + 4 * i)));
    }
    return c;
}

std::uint32_t cfg_dword16(std::uint32_t du_bytes, std::uint8_t capidx, bool enable) {
    return ((du_bytes / 512) & 0xff) | (std::uint32_t{capidx} << 8) | (enable ? kCfgEnable : 0u);
}

void write_keyslot(UfsHost& host, std::uint32_t cfg_offset, std::span<const std::uint8_t, 64> key,
                   std::uint32_t dword16) {
    host.wreg(cfg_offset + 0x40, 0);
    for (unsigned i = 0; i < 16; ++i) {
        const std::uint32_t dw = std::uint32_t{key[4 * i]} | std::uint32_t{key[4 * i + 1]} << 8 |
                                 std::uint32_t{key[4 * i + 2]} << 16 |
                                 std::uint32_t{key[4 * i + 3]} << 24;
        host.wreg(cfg_offset + 4 * i, dw);
    }
    host.wreg(cfg_offset + 0x44, 0);
    host.wreg(cfg_offset + 0x40, dword16);
}

void program_keyslot(UfsHost& host, const CryptoCapabilities& caps, unsigned slot,
                     std::span<const std::uint8_t, 64> key, std::uint32_t du_bytes,
                     std::uint8_t capidx) {
    write_keyslot(host, caps.cfg_offset(slot), key, cfg_dword16(du_bytes, capidx, true));
}

void evict_keyslot(UfsHost& host, const CryptoCapabilities& caps, unsigned slot) {
    const std::array<std::uint8_t, 64> zero{};
    write_keyslot(host, caps.cfg_offset(slot), zero, 0);
}

std::array<std::uint8_t, 64> xts_key_image(std::span<const std::uint8_t> k1,
                                           std::span<const std::uint8_t> k2) {
    std::array<std::uint8_t, 64> img{};
    std::copy_n(k1.begin(), std::min<std::size_t>(k1.size(), 32), img.begin());
    std::copy_n(k2.begin(), std::min<std::size_t>(k2.size(), 32), img.begin() + 32);
    return img;
}

} // namespace icemu::ufs
