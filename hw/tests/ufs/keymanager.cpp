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

KeyManager::KeyManager(UfsHost& host, std::uint64_t buffer) : host_(host), buffer_(buffer) {
    set_buffer(buffer);
}

void KeyManager::set_buffer(std::uint64_t buffer, bool in_ram) {
    buffer_ = buffer;
    in_ram_ = in_ram;
    host_.wreg(kKmba, static_cast<std::uint32_t>(buffer));
    host_.wreg(kKmbau, static_cast<std::uint32_t>(buffer >> 32));
}

void KeyManager::clear_buffer() {
    host_.machine().memset(buffer_, 256, 0);
}

Result KeyManager::run_raw(std::uint8_t op, std::span<const std::uint8_t> in, std::uint8_t slot,
                           std::uint32_t cfg, std::uint8_t len) {
    auto& m = host_.machine();
    if (in_ram_) {
        if (!in.empty()) {
            m.memwrite(buffer_, in);
        }
        m.memset(buffer_ + kOutOffset, 0x80, 0xee);
    }
    host_.wreg(kKmcfg, cfg);
    host_.wreg(kKmcmd, std::uint32_t{op} | std::uint32_t{slot} << 8 | std::uint32_t{len} << 16);
    Result r;
    r.kmsts = host_.rreg(kKmsts);
    r.status = static_cast<Status>(r.kmsts & 0xff);
    const std::size_t outlen = r.kmsts >> 16;
    if (outlen && in_ram_) {
        r.out = m.memread(buffer_ + kOutOffset, outlen);
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
