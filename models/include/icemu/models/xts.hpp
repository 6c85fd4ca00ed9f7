// xts: AES-128/256-XTS over a buffer of data units, as an inline-crypto engine applies it.
//
// Models:
//   - the transform each data unit of a CE request gets: AES-XTS (IEEE 1619-2007 §5.3) with
//     the key K1||K2 in the Linux `xts(aes)` order (K1 = data key, K2 = tweak key);
//     32 bytes = AES-128-XTS, 64 bytes = AES-256-XTS;
//   - the tweak of data unit i of a request: the 128-bit little-endian number DUN + i
//     (IEEE 1619 §5.1 "data unit sequence number" encoded little-endian; Linux
//     `blk_crypto_dun_to_iv`, block/blk-crypto-fallback.c:233-240 in 7.3.4);
//   - the key fingerprint of docs/event-log.md ("Key fingerprint").
//
// DUN carry rule (decision, see docs/models.md "DUN carry"): the kernel's software path
// (blk-crypto-fallback) increments the DUN per data unit with `bio_crypt_dun_increment`
// (block/blk-crypto.c:137-152 in 7.3.4), a multi-limb add whose carry out of dun[0] goes into
// dun[1]. The IV is the little-endian dump of the dun[] array, so for DUN = 2^64-1 the next
// data unit's tweak is 2^64 (byte 8 = 0x01), NOT 0. DunCarry::kernel_fallback (the default)
// reproduces that byte for byte. DunCarry::wrap64 is the alternative a device with a 64-bit
// DUN counter would produce (tweak bytes 8..15 always 0); it exists so a checker can name the
// difference, not as the expected behaviour.
//
// Invariants: data_unit_size is a non-zero multiple of 16; the buffer is a whole number of
// data units; decrypt(encrypt(x)) == x; equal key halves are accepted (IEEE 1619 vector 1 has
// K1 == K2; note the kernel fallback rejects them: it sets CRYPTO_TFM_REQ_FORBID_WEAK_KEYS,
// blk-crypto-fallback.c:663, checked by xts_verify_key, include/crypto/xts.h:39-48).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace icemu::models {

using Bytes = std::vector<std::uint8_t>;
using ByteView = std::span<const std::uint8_t>;

/// AES-XTS key sizes, in bytes of K1||K2.
inline constexpr std::size_t kXts128KeyBytes = 32;
inline constexpr std::size_t kXts256KeyBytes = 64;
/// The AES block; XTS data units must be a multiple of it (no ciphertext stealing here).
inline constexpr std::size_t kAesBlockBytes = 16;

/// How the tweak of data unit i is formed from the request's 64-bit DUN.
enum class DunCarry {
    kernel_fallback, ///< 128-bit DUN + i: carry out of bit 63 goes into bit 64 (Linux fallback)
    wrap64,          ///< (DUN + i) mod 2^64, upper 64 tweak bits zero
};

/// A 128-bit unsigned number, little-endian limbs (lo = bits 0..63).
struct U128 {
    std::uint64_t lo = 0;
    std::uint64_t hi = 0;
    friend bool operator==(const U128&, const U128&) = default;
};

/// The tweak number of data unit `unit_index` of a request whose first data unit has `dun`.
U128 tweak_for_unit(std::uint64_t dun, std::uint64_t unit_index,
                    DunCarry carry = DunCarry::kernel_fallback);
/// The 16 tweak bytes (IEEE 1619 §5.1: the tweak number, little-endian).
std::array<std::uint8_t, 16> tweak_bytes(U128 tweak);

/// True for 32 (AES-128-XTS) and 64 (AES-256-XTS).
bool is_xts_key_size(std::size_t key_bytes);

/// An AES-XTS engine for one key; reusable across requests. Throws std::invalid_argument on a
/// key that is not 32 or 64 bytes.
class XtsCipher {
public:
    explicit XtsCipher(ByteView key);
    ~XtsCipher();
    XtsCipher(XtsCipher&&) noexcept;
    XtsCipher& operator=(XtsCipher&&) noexcept;
    XtsCipher(const XtsCipher&) = delete;
    XtsCipher& operator=(const XtsCipher&) = delete;

    /// Transforms `in` (a whole number of data units) into `out` (same size; may alias `in`).
    /// Throws std::invalid_argument on a bad data unit size or buffer length.
    void encrypt(std::uint64_t dun, std::size_t data_unit_size, ByteView in,
                 std::span<std::uint8_t> out, DunCarry carry = DunCarry::kernel_fallback);
    void decrypt(std::uint64_t dun, std::size_t data_unit_size, ByteView in,
                 std::span<std::uint8_t> out, DunCarry carry = DunCarry::kernel_fallback);

    std::size_t key_size() const { return key_size_; }

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
    std::size_t key_size_ = 0;
};

/// One-shot forms of XtsCipher::encrypt / decrypt.
Bytes xts_encrypt(ByteView key, std::uint64_t dun, std::size_t data_unit_size, ByteView plaintext,
                  DunCarry carry = DunCarry::kernel_fallback);
Bytes xts_decrypt(ByteView key, std::uint64_t dun, std::size_t data_unit_size, ByteView ciphertext,
                  DunCarry carry = DunCarry::kernel_fallback);

/// docs/event-log.md "Key fingerprint": first 8 bytes of SHA-256(key), 16 lowercase hex digits.
/// `key` is the key as the engine uses it (K1||K2: 32 or 64 bytes; any length is hashed).
std::string key_fingerprint(ByteView key);

/// The XTS key an engine uses from the 64-byte CRYPTOKEY field of a keyslot (UFSHCI x-CRYPTOCFG
/// dwords 0-15, ufshcd_crypto_keyslot_program in drivers/ufs/core/ufshcd-crypto.c): K1 at byte
/// 0, K2 at byte 32, each key_bits/8 long.
/// AES-256: bytes 0..63; AES-128: bytes 0..15 then 32..47. Throws on key_bits not 128/256.
Bytes xts_key_from_cryptokey(std::span<const std::uint8_t, 64> cryptokey, unsigned key_bits);
/// The inverse: place K1||K2 into a zeroed 64-byte CRYPTOKEY field (what Linux writes,
/// ufshcd-crypto.c:83-90 in 6.12).
std::array<std::uint8_t, 64> cryptokey_from_xts_key(ByteView key);

/// Lowercase hex of bytes / bytes of a hex string (throws std::invalid_argument on bad hex).
std::string to_hex(ByteView bytes);
Bytes from_hex(std::string_view hex);

} // namespace icemu::models
