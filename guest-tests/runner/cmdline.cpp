#include "cmdline.hpp"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>

namespace icemu::runner {

static std::string pci_addr(unsigned slot) {
    char b[32];
    std::snprintf(b, sizeof b, "0000:00:%02x.0", slot);
    return b;
}

static std::string hex_slot(unsigned slot) {
    char b[16];
    std::snprintf(b, sizeof b, "0x%02x", slot);
    return b;
}

std::string hex_to_base64(const std::string& hex) {
    static const char* b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::vector<unsigned> bytes;
    for (std::size_t i = 0; i + 1 < hex.size(); i += 2)
        bytes.push_back(static_cast<unsigned>(std::stoul(hex.substr(i, 2), nullptr, 16)));
    std::string out;
    for (std::size_t i = 0; i < bytes.size(); i += 3) {
        unsigned n = bytes[i] << 16;
        if (i + 1 < bytes.size())
            n |= bytes[i + 1] << 8;
        if (i + 2 < bytes.size())
            n |= bytes[i + 2];
        out += b64[(n >> 18) & 63];
        out += b64[(n >> 12) & 63];
        out += i + 1 < bytes.size() ? b64[(n >> 6) & 63] : '=';
        out += i + 2 < bytes.size() ? b64[n & 63] : '=';
    }
    return out;
}

std::string ufs_pci_addr(std::size_t i) {
    return pci_addr(kUfsSlotBase + static_cast<unsigned>(i));
}
std::string virtio_blk_pci_addr(std::size_t i) {
    return pci_addr(kVirtioBlkSlotBase + static_cast<unsigned>(i));
}

std::string lu_image(const MachinePaths& p, const Controller& c, const Lu& lu) {
    return p.dir + "/" + c.id + "-lu" + std::to_string(lu.lun) + "-" + lu.name + ".img";
}
std::string virtio_image(const MachinePaths& p, const VirtioDisk& d) {
    return p.dir + "/virtio-" + d.name + ".img";
}
std::string event_log_path(const MachinePaths& p, const Controller& c) {
    return p.dir + "/" + c.id + ".events.jsonl";
}
std::string qmp_socket(const MachinePaths& p) {
    return p.dir + "/qmp.sock";
}
std::string guest_socket(const MachinePaths& p) {
    return p.dir + "/guest.sock";
}
std::string console_log(const MachinePaths& p) {
    return p.dir + "/console.log";
}

bool crypto_enabled(const Controller& c, const EngineOptions& e) {
    return c.crypto && e.props_supported && !e.force_off;
}

std::string kernel_append(const Scenario& s) {
    // no_timer_check: under TCG on a loaded host the kernel's IO-APIC timer check can time out
    // and panic ("IO-APIC + timer doesn't work"); the check proves nothing about crypto.
    // unknown_nmi_panic panic_print=0x40: the NMI icemu-run sends a guest that never said
    // hello makes it panic with every CPU's backtrace on the console (QEMU sends no other).
    std::string a = "console=ttyS0 quiet panic=-1 no_timer_check unknown_nmi_panic "
                    "panic_print=0x40 rdinit=/init";
    if (!s.append.empty())
        a += " " + s.append;
    return a;
}

std::string disk_locations(const Scenario& s) {
    std::string out;
    auto add = [&](const std::string& item) { out += (out.empty() ? "" : ",") + item; };
    for (std::size_t i = 0; i < s.controllers.size(); ++i) {
        const Controller& c = s.controllers[i];
        for (const Lu& lu : c.lus)
            add(lu.name + "@" + ufs_pci_addr(i) +
                (c.is_emmc() ? "" : ":" + std::to_string(lu.lun)));
    }
    for (std::size_t j = 0; j < s.virtio_disks.size(); ++j)
        add(s.virtio_disks[j].name + "@" + virtio_blk_pci_addr(j));
    return out;
}

std::vector<std::string> qemu_argv(const Scenario& s, const MachinePaths& p,
                                   const EngineOptions& e) {
    std::vector<std::string> a = {
        p.qemu, "-M",     "q35",  "-nodefaults",         "-display", "none", "-no-reboot",
        "-m",   s.memory, "-smp", std::to_string(s.smp), "-accel",   p.accel};
    auto add = [&](std::initializer_list<std::string> xs) { a.insert(a.end(), xs); };
    if (p.accel == "kvm")
        add({"-cpu", "host"});
    add({"-chardev", "file,id=con,path=" + console_log(p), "-serial", "chardev:con"});
    add({"-chardev", "socket,id=qmp,path=" + qmp_socket(p), "-mon", "chardev=qmp,mode=control"});
    add({"-device", "virtio-serial-pci,id=vser,addr=" + hex_slot(kVirtioSerialSlot)});
    add({"-chardev", "socket,id=guest,path=" + guest_socket(p)});
    add({"-device", "virtserialport,bus=vser.0,chardev=guest,name=org.icemu.0"});
    for (std::size_t i = 0; i < s.controllers.size(); ++i) {
        const Controller& c = s.controllers[i];
        std::string addr = hex_slot(kUfsSlotBase + static_cast<unsigned>(i));
        std::string dev = "ufs,id=" + c.id + ",serial=icemu-" + c.id + ",addr=" + addr;
        if (c.is_emmc()) {
            // sdhci-pci with a CQHCI and a soldered eMMC on the drive (docs/device.md)
            std::string drive = c.id + "-emmc";
            add({"-drive",
                 "if=none,id=" + drive + ",file=" + lu_image(p, c, c.lus.at(0)) + ",format=raw"});
            dev = "sdhci-pci,id=" + c.id + ",addr=" + addr + ",cqhci=on,emmc-drive=" + drive;
        }
        if (!c.is_emmc() && !e.pci_identity.empty())
            dev += ",pci-identity=" + e.pci_identity;
        if (c.mcq) {
            dev += ",mcq=true";
            if (c.mcq_maxq)
                dev += ",mcq-maxq=" + std::to_string(*c.mcq_maxq);
        }
        if (e.props_supported) {
            if (crypto_enabled(c, e)) {
                std::string log = "clog-" + c.id;
                add({"-chardev", "file,id=" + log + ",path=" + event_log_path(p, c)});
                dev += ",crypto=on,crypto-log=" + log;
                if (c.keyslots)
                    dev += ",crypto-keyslots=" + std::to_string(*c.keyslots);
                if (!c.caps.empty())
                    dev += ",crypto-caps=" + c.caps;
                if (c.log_keys)
                    dev += ",crypto-log-keys=on";
                if (c.wrapped_keys) {
                    dev += ",crypto-wrapped-keys=on";
                    if (!c.raw_keys)
                        dev += ",crypto-raw-keys=off";
                    if (!c.wrapping_key.empty()) {
                        // the long-term wrapping key, as a QEMU secret object
                        std::string sec = "wk-" + c.id;
                        add({"-object", "secret,id=" + sec + ",format=base64,data=" +
                                            hex_to_base64(c.wrapping_key)});
                        dev += ",crypto-wrapping-key=" + sec;
                    }
                }
            } else {
                dev += ",crypto=off";
            }
        }
        add({"-device", dev});
        for (const Lu& lu : c.is_emmc() ? std::vector<Lu>{} : c.lus) {
            std::string drive = c.id + "-lu" + std::to_string(lu.lun);
            add({"-drive", "if=none,id=" + drive + ",file=" + lu_image(p, c, lu) + ",format=raw"});
            add({"-device",
                 "ufs-lu,bus=" + c.id + ",lun=" + std::to_string(lu.lun) + ",drive=" + drive});
        }
    }
    for (std::size_t j = 0; j < s.virtio_disks.size(); ++j) {
        const VirtioDisk& d = s.virtio_disks[j];
        std::string drive = "vd-" + d.name;
        add({"-drive", "if=none,id=" + drive + ",file=" + virtio_image(p, d) + ",format=raw"});
        add({"-device", "virtio-blk-pci,drive=" + drive +
                            ",addr=" + hex_slot(kVirtioBlkSlotBase + static_cast<unsigned>(j))});
    }
    std::string append = kernel_append(s);
    if (!p.extra_append.empty())
        append += " " + p.extra_append;
    add({"-kernel", p.kernel, "-initrd", p.initrd, "-append", append});
    return a;
}

double parse_seconds(const std::string& text) {
    const char* p = text.c_str();
    char* end = nullptr;
    errno = 0;
    const double v = std::strtod(p, &end);
    // strtod skips leading blanks and accepts "inf", "nan" and hex: accept plain decimals only
    const bool plain = !text.empty() && text.find_first_not_of("0123456789.") == std::string::npos;
    if (!plain || end == p || *end != '\0' || errno == ERANGE || !std::isfinite(v) || v <= 0)
        throw std::invalid_argument(
            "'" + text + "' is not a number of seconds greater than 0 (e.g. 300 or 1.5)");
    return v;
}

std::string shell_join(const std::vector<std::string>& argv) {
    std::string out;
    for (const auto& x : argv) {
        if (!out.empty())
            out += ' ';
        bool plain =
            !x.empty() &&
            x.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
                                "-_=,./:+@%") == std::string::npos;
        if (plain) {
            out += x;
        } else {
            out += '\'';
            for (char ch : x)
                out += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
            out += '\'';
        }
    }
    return out;
}

} // namespace icemu::runner
