// UFSHCI inline-crypto register helpers for the tests: CCAP / x-CRYPTOCAP decoding and the
// exact 19-write keyslot program/evict sequence of Linux's ufshcd_program_key()
// (ufshcd-crypto.c: dword16 = 0, dwords 0-15 = key, dword17 = 0, dword16 last).
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <vector>

#include "ufs/host.hpp"

namespace icemu::ufs {

constexpr std::uint8_t kAlgAesXts = 0;
constexpr std::uint8_t kKs128 = 1;
constexpr std::uint8_t kKs192 = 2;
constexpr std::uint8_t kKs256 = 3;
constexpr std::uint8_t kKs512 = 4;
constexpr std::uint32_t kCfgEnable = 1u << 31;
constexpr std::uint32_t kCfgEntryBytes = 0x80;

struct CryptoCapEntry {
    std::uint8_t algid = 0;
    std::uint8_t sdusb = 0;
    std::uint8_t ks = 0;
    friend bool operator==(const CryptoCapEntry&, const CryptoCapEntry&) = default;
};

struct CryptoCapabilities {
    std::uint32_t ccap = 0;
    unsigned cc = 0;       // number of x-CRYPTOCAP entries
    unsigned keyslots = 0; // CFGC + 1
    unsigned cfgptr = 0;   // x-CRYPTOCFG at cfgptr * 0x100
    std::vector<CryptoCapEntry> caps;

    std::uint32_t cfg_offset(unsigned slot) const { return cfgptr * 0x100 + slot * kCfgEntryBytes; }
};

CryptoCapEntry decode_cryptocap(std::uint32_t v);
CryptoCapabilities read_crypto_capabilities(UfsHost& host);

// DUSIZE (one-hot, size/512) | CAPIDX << 8 | CFGE << 31.
std::uint32_t cfg_dword16(std::uint32_t du_bytes, std::uint8_t capidx, bool enable);

// The 19 writes, in Linux order, for a 64-byte CRYPTOKEY image and a dword 16 value.
void write_keyslot(UfsHost& host, std::uint32_t cfg_offset, std::span<const std::uint8_t, 64> key,
                   std::uint32_t dword16);
// Program: key image per XTS layout, then CFGE=1.
void program_keyslot(UfsHost& host, const CryptoCapabilities& caps, unsigned slot,
                     std::span<const std::uint8_t, 64> key, std::uint32_t du_bytes,
                     std::uint8_t capidx);
// Evict: the same 19 writes with an all-zero configuration.
void evict_keyslot(UfsHost& host, const CryptoCapabilities& caps, unsigned slot);

// Places XTS halves at CRYPTOKEY byte 0 and byte 32 (key_bytes = 16 or 32 per half).
std::array<std::uint8_t, 64> xts_key_image(std::span<const std::uint8_t> k1,
                                           std::span<const std::uint8_t> k2);

} // namespace icemu::ufs
