#include "keymanager.hpp"

namespace icemu::ufs::km {

const char* status_name(Status s) {
    switch (s) {
    case Status::ok:
        return "ok";
    case Status::opcode:
        return "opcode";
    case Status::length:
        return "length";
    case Status::blob:
        return "blob";
    case Status::dma:
        return "dma";
    case Status::slot:
        return "slot";
    case Status::config:
        return "config";
    case Status::cipher:
        return "cipher";
    }
    return "?";
}

KeyManager::KeyManager(qtest::Machine& m, std::uint64_t base, std::uint64_t buffer)
    : m_(m), base_(base), buffer_(buffer) {
    set_buffer(buffer);
}

void KeyManager::set_buffer(std::uint64_t buffer, bool in_ram) {
    buffer_ = buffer;
    in_ram_ = in_ram;
    wreg(kKmba, static_cast<std::uint32_t>(buffer));
    wreg(kKmbau, static_cast<std::uint32_t>(buffer >> 32));
}

void KeyManager::clear_buffer() {
    m_.memset(buffer_, 256, 0);
}

Result KeyManager::run_raw(std::uint8_t op, std::span<const std::uint8_t> in, std::uint8_t slot,
                           std::uint32_t cfg, std::uint8_t len) {
    if (in_ram_) {
        if (!in.empty()) {
            m_.memwrite(buffer_, in);
        }
        m_.memset(buffer_ + kOutOffset, 0x80, 0xee);
    }
    wreg(kKmcfg, cfg);
    wreg(kKmcmd, std::uint32_t{op} | std::uint32_t{slot} << 8 | std::uint32_t{len} << 16);
    Result r;
    r.kmsts = rreg(kKmsts);
    r.status = static_cast<Status>(r.kmsts & 0xff);
    const std::size_t outlen = r.kmsts >> 16;
    if (outlen && in_ram_) {
        r.out = m_.memread(buffer_ + kOutOffset, outlen);
    }
    return r;
}

Result KeyManager::run(Op op, std::span<const std::uint8_t> in, std::uint8_t slot,
                       std::uint32_t cfg, std::optional<std::uint8_t> len) {
    return run_raw(static_cast<std::uint8_t>(op), in, slot, cfg,
                   len ? *len : static_cast<std::uint8_t>(in.size()));
}

Result KeyManager::program(std::span<const std::uint8_t> eph, unsigned slot, std::uint32_t du_bytes,
                           std::uint8_t capidx) {
    const std::uint32_t cfg = ((du_bytes / 512) & 0xff) | std::uint32_t{capidx} << 8;
    return run(Op::program, eph, static_cast<std::uint8_t>(slot), cfg);
}

} // namespace icemu::ufs::km
