// icemu-check, stage 2: the models of the run's files. Every file with enough facts becomes a
// FileModel with the fscrypt model's key and DUN function (or, for a write_dev range under
// dm-inlinecrypt, the table's key and DUN rule), its extents mapped through the dm tables onto
// (controller, LUN, byte range).
#include "run.hpp"

#include "icemu/models/f2fs.hpp"
#include "icemu/models/hw_wrapped.hpp"
#include "icemu/models/xts.hpp"

namespace icemu::checker::detail {

namespace {

// Maps [off, off+len) bytes of device `token` through the dm tables `segs` onto LUs and virtio
// disks (dm_passthrough map_bytes per segment, recursively for stacked dm devices).
void map_range(const Facts& w, const SegMap& segs, const std::string& token, std::uint64_t off,
               std::uint64_t len, std::uint64_t file_off, std::size_t file, std::vector<Piece>& out,
               int depth) {
    auto r = w.resolve(token);
    if (!r || depth > 8 || len == 0) {
        return;
    }
    if (!is_dm(r)) {
        const Disk& d = w.disks.at(*r);
        out.push_back(Piece{file, d.name, d.ctrl, d.lun, off, len, file_off});
        return;
    }
    auto it = segs.find(r->substr(3));
    if (it == segs.end()) {
        return;
    }
    for (const auto& s : it->second) {
        for (const auto& m : dm::map_bytes(s, off, len)) {
            map_range(w, segs, m.dev, m.dev_off, m.len, file_off + (m.dm_off - off), file, out,
                      depth + 1);
        }
    }
}

// enum blk_crypto_mode_num of a fscrypt contents mode (fs/crypto/keysetup.c fscrypt_modes[]
// .blk_crypto_mode): AES-256-XTS, AES-128-CBC-ESSIV, Adiantum, SM4-XTS; 0 (INVALID) for a
// mode blk-crypto does not know.
unsigned blk_mode_of(unsigned contents) {
    switch (contents) {
    case 1: // FSCRYPT_MODE_AES_256_XTS
        return static_cast<unsigned>(dm::Mode::aes_256_xts);
    case 5: // FSCRYPT_MODE_AES_128_CBC
        return static_cast<unsigned>(dm::Mode::aes_128_cbc_essiv);
    case 9: // FSCRYPT_MODE_ADIANTUM
        return static_cast<unsigned>(dm::Mode::adiantum);
    case 7: // FSCRYPT_MODE_SM4_XTS
        return static_cast<unsigned>(dm::Mode::sm4_xts);
    default:
        return 0;
    }
}

std::string contents_name(unsigned contents) {
    switch (contents) {
    case 1:
        return "AES-256-XTS";
    case 5:
        return "AES-128-CBC-ESSIV";
    case 9:
        return "Adiantum";
    case 7:
        return "SM4-XTS";
    default:
        return "mode " + std::to_string(contents);
    }
}

// Maps a FIEMAP extent of a multi-device F2FS (byte addresses of the whole filesystem) onto
// its devices, then each piece like any device range.
void map_fs_range(const Facts& w, const Fs& fsys, const SegMap& segs, std::uint64_t off,
                  std::uint64_t len, std::uint64_t file_off, std::size_t file,
                  std::vector<Piece>& out) {
    if (fsys.devs.size() <= 1) {
        map_range(w, segs, fsys.dev, off, len, file_off, file, out, 0);
        return;
    }
    if (!fsys.layout_note.empty()) {
        return; // no layout: the extents cannot be placed on a device
    }
    for (const auto& d : fsys.devs) {
        const std::uint64_t a = std::max(off, d.start), b = std::min(off + len, d.start + d.len);
        if (a < b) {
            map_range(w, segs, d.dev, a - d.start, b - a, file_off + (a - off), file, out, 0);
        }
    }
}

// A file on a dm device whose mapping is not a table lookup (dm-thin: blocks are allocated
// when first written, the metadata is the pool's): its data units are wherever the
// controllers' logs show them written last with its key (fingerprint) and their DUNs, by
// successful CE writes. Only files none of whose extents could be mapped, with a predictable
// key and DUN, and only the units the logs place; returns the pieces (one per data unit).
std::vector<Piece> place_by_log(const Facts& w, const FileModel& fm, std::size_t file) {
    std::vector<Piece> out;
    const std::uint64_t du = 1ull << fm.du_bits;
    const std::uint64_t nunits = (fm.f->size + du - 1) / du;
    if (nunits == 0 || nunits > (1u << 22)) {
        return out;
    }
    std::map<std::uint64_t, std::uint64_t> unit_of; // DUN -> data unit of the file
    for (std::uint64_t u = 0; u < nunits; ++u) {
        unit_of.emplace(fm.dun_at(u * du), u);
    }
    std::map<std::pair<std::string, unsigned>, const Disk*> disk_at; // (ctrl, LUN) -> disk
    for (const auto& [name, d] : w.disks) {
        disk_at[{d.ctrl, d.lun}] = &d;
    }
    std::map<std::uint64_t, Piece> at; // data unit -> where it was written last
    for (const auto& [ctrl, log] : w.in.logs) {
        for (const auto& e : log.events) {
            const auto* io = std::get_if<models::events::Io>(&e.body);
            if (!io || !io->ce || io->op != models::events::IoOp::write || io->status != 0 ||
                io->ocs != 0 || io->dusize != du || io->key_fp.str() != fm.key_fp) {
                continue;
            }
            const auto found = disk_at.find({ctrl, io->lun});
            if (found == disk_at.end()) {
                continue;
            }
            const Disk* disk = found->second;
            for (std::uint64_t k = 0; k < io->bytes / du; ++k) {
                auto u = unit_of.find(io->dun + k);
                if (u != unit_of.end()) {
                    at[u->second] =
                        Piece{file, disk->name,    ctrl, io->lun, io->lba * io->block_size + k * du,
                              du,   u->second * du};
                }
            }
        }
    }
    for (auto& [u, p] : at) {
        out.push_back(std::move(p));
    }
    return out;
}

} // namespace

Models build_models(const Facts& w) {
    Models out;
    auto& fms = out.fms;
    auto& pieces = out.pieces;
    auto& derivable = out.derivable;
    for (const FileF& f : w.files) {
        FileModel m;
        m.f = &f;
        m.path = f.path;
        if (f.ic) {
            m.encrypted = true;
            m.predictable = true;
            m.key = f.ic->key;
            m.key_fp = models::key_fingerprint(m.key);
            m.policy_name = "dm-inlinecrypt " + f.ic->dm;
            m.du_bits = f.ic->sector_bits;
            m.from = f.write_step;
            m.to = f.end_step;
            m.on_dm = is_dm(w.resolve(f.ic_dev));
            // blk_crypto_config_supported_natively: mode + data unit + DUN bytes of the device
            const std::uint64_t max_dun = f.ic->iv_offset + (f.size / 512 - f.ic->seg_start);
            unsigned dun_bytes = 1;
            while (dun_bytes < 8 && (max_dun >> (8 * dun_bytes)) != 0) {
                ++dun_bytes;
            }
            m.decided = f.dev_profile.has_value();
            if (f.dev_profile && f.dev_profile->has_value()) {
                const auto& caps = **f.dev_profile;
                m.native = (caps.modes[1] & (1u << m.du_bits)) != 0 &&
                           caps.max_dun_bytes >= dun_bytes && (caps.key_types & dm::kKeyTypeRaw);
            }
            const std::uint64_t lo = u64(f.extents[0], "logical"),
                                len = u64(f.extents[0], "length");
            map_range(w, f.segs, f.ic_dev, f.ic_dev_off, len, lo, fms.size(), pieces, 0);
            derivable.emplace(m.key_fp, std::pair{"the dm-inlinecrypt key of " + f.ic->dm,
                                                  fc::Policy::v2_default});
            fms.push_back(std::move(m));
            continue;
        }
        const std::size_t when = f.written ? f.write_step : f.info_step;
        m.from = f.written ? f.write_step : 1;
        m.to = f.end_step;
        const Fs* fsys = nullptr;
        for (const auto& x : w.fss) {
            if (x.mount_step <= when && x.umount_step > when && starts_under(f.path, x.mnt)) {
                fsys = &x;
            }
        }
        const Pol* pol = nullptr;
        for (const auto& p : w.pols) {
            if (p.step <= when && (starts_under(f.path, p.dir) || f.path == p.dir) &&
                (!pol || p.dir.size() > pol->dir.size())) {
                pol = &p;
            }
        }
        m.encrypted = pol != nullptr;
        if (!fsys) {
            m.why_not = "no mounted filesystem holds it";
        } else if (!pol) {
            m.why_not = "not under an encryption policy";
        }
        if (fsys) {
            m.blkbits = fsys->blkbits;
            m.on_dm = is_dm(w.resolve(fsys->dev));
            m.multi_dev = fsys->devs.size() > 1;
        }
        if (fsys && pol) {
            m.du_bits = pol->log2_du ? pol->log2_du : fsys->blkbits;
            if (pol->flags & 0x08) {
                m.policy = fc::Policy::iv_ino_lblk_64;
                m.policy_name = "IV_INO_LBLK_64";
            } else if (pol->flags & 0x10) {
                m.policy = fc::Policy::iv_ino_lblk_32;
                m.policy_name = "IV_INO_LBLK_32";
            } else if (pol->version == 1) {
                m.policy = fc::Policy::v1;
                m.policy_name = "v1 (per-file key, AES-128-ECB KDF)";
            } else {
                m.policy_name = "default (per-file key)";
            }
            for (const auto& mk : w.mks) {
                if (mk.mnt == fsys->mnt && mk.identifier == pol->identifier &&
                    mk.v1 == (pol->version == 1) && mk.add_step <= when && mk.remove_step > when) {
                    m.mk = &mk;
                }
            }
            m.contents = pol->contents;
            if (pol->contents != 1) {
                m.policy_name += ", contents " + contents_name(pol->contents);
            }
            if (pol->flags & 0x04) {
                // policy.c supported_direct_key_modes: no AES-256-XTS policy can be DIRECT_KEY,
                // so its key never reaches an AES-XTS engine (fscrypt.hpp).
                m.why_not = "DIRECT_KEY policies are not modelled (the kernel allows them only "
                            "for Adiantum-class modes, never AES-256-XTS)";
            } else if (pol->contents != 1) {
                m.why_not = "contents mode " + contents_name(pol->contents) +
                            " is not modelled (only AES-256-XTS); the medium is only checked "
                            "for plaintext";
            } else if (!m.mk) {
                m.why_not = "the master key was not added by a reported step";
            } else if (m.mk->hw_wrapped && m.mk->key.empty()) {
                m.why_not = "a hardware-wrapped key whose raw master key the checker does not "
                            "know (no 32-byte value in the scenario's vars or the steps)";
            } else if (m.mk->hw_wrapped && m.policy == fc::Policy::v2_default) {
                m.why_not = "a hardware-wrapped key under a policy without IV_INO_LBLK_* (the "
                            "kernel refuses it)";
            } else if (!f.have_ino) {
                m.why_not = "no inode number reported";
            } else if ((m.policy == fc::Policy::v2_default || m.policy == fc::Policy::v1) &&
                       !f.nonce) {
                m.why_not = f.have_info ? "file_info reported no nonce"
                                        : "no file_info step (nonce, extents)";
            } else if (m.policy != fc::Policy::v2_default && m.policy != fc::Policy::v1 &&
                       !m.mk->hw_wrapped && fsys->uuid.size() != 16) {
                m.why_not = "no filesystem UUID reported (mkfs uuid)";
            } else if (m.mk->hw_wrapped) {
                // The contents key is the inline encryption key itself; IV_INO_LBLK_32 hashes
                // inodes with the key derived from the software secret (hw_wrapped.hpp).
                m.key = models::hw_wrapped::inline_encryption_key(m.mk->key);
                m.key_fp = models::key_fingerprint(m.key);
                if (m.policy == fc::Policy::iv_ino_lblk_32) {
                    m.hashed = fc::hashed_ino(models::hw_wrapped::inode_hash_key(m.mk->key), f.ino);
                }
                m.policy_name += " (hardware-wrapped key)";
                m.predictable = true;
            } else {
                fc::FileParams fp;
                fp.policy = m.policy;
                fp.master_key = m.mk->key;
                if (fsys->uuid.size() == 16) {
                    std::copy(fsys->uuid.begin(), fsys->uuid.end(), fp.fs_uuid.begin());
                }
                if (f.nonce && f.nonce->size() == 16) {
                    std::copy(f.nonce->begin(), f.nonce->end(), fp.nonce.begin());
                }
                fp.ino = f.ino;
                fp.blkbits = fsys->blkbits;
                fp.du_bits = m.du_bits;
                try {
                    m.key = fc::expected_for_block(fp, 0).key;
                    m.key_fp = models::key_fingerprint(m.key);
                    if (m.policy == fc::Policy::iv_ino_lblk_32) {
                        m.hashed = fc::hashed_ino(fc::inode_hash_key(m.mk->key), f.ino);
                    }
                    m.predictable = true;
                } catch (const std::exception& e) {
                    m.why_not = std::string("fscrypt model: ") + e.what();
                }
            }
            // Native inline crypto (fscrypt_select_encryption_impl + blk_crypto_config_supported).
            const std::uint64_t s_maxbytes = fsys->fstype == "f2fs"
                                                 ? models::f2fs::s_maxbytes()
                                                 : ((1ull << 32) - 1) << fsys->blkbits;
            const unsigned need = fc::dun_bytes(m.policy, s_maxbytes, m.du_bits);
            const bool lblk32_ok = m.policy != fc::Policy::iv_ino_lblk_32 || fsys->blkbits == 12;
            // 6.15+: the key's type too (blk_crypto_config_supported_natively); on a
            // wrapped-only device a raw key goes to blk-crypto-fallback.
            const unsigned type =
                m.mk && m.mk->hw_wrapped ? dm::kKeyTypeHwWrapped : dm::kKeyTypeRaw;
            const unsigned bm = blk_mode_of(pol->contents);
            auto supported = [&](const std::optional<dm::Profile>& prof) {
                if (!prof || !prof->has_value()) {
                    return false;
                }
                const auto& caps = **prof;
                return bm != 0 && (caps.modes[bm] & (1u << m.du_bits)) != 0 &&
                       caps.max_dun_bytes >= need && (caps.key_types & type) != 0;
            };
            m.native = fsys->inlinecrypt && lblk32_ok && supported(f.dev_profile);
            m.decided = f.dev_profile.has_value();
            // A filesystem on several devices (F2FS): fscrypt starts using the key on each of
            // them (fs/crypto/block.c fscrypt_prepare_inline_crypt_key ->
            // blk_crypto_start_using_key) and each bio goes to one device, where blk-crypto
            // decides on its own: native if that device supports the configuration, else
            // blk-crypto-fallback (block/blk-crypto.c __blk_crypto_submit_bio; 6.12
            // blk_crypto_bio_prep). So one file can be native on one device and use the
            // fallback on another (unlike dm, whose profile is the intersection).
            for (const auto& [dev, prof] : f.dev_profiles) {
                const auto r = w.resolve(dev);
                if (r && !is_dm(r) && !w.disks.at(*r).ctrl.empty()) {
                    const bool nat = fsys->inlinecrypt && lblk32_ok && supported(prof);
                    m.native_ctrl[w.disks.at(*r).ctrl] = nat;
                    m.native = m.native || nat;
                }
            }
        }
        if (f.have_info && f.extents.is_array() && fsys) {
            for (const auto& e : f.extents) {
                const std::uint64_t flags = u64(e, "flags");
                if (flags & 0x6) { // FIEMAP_EXTENT_UNKNOWN | DELALLOC: no physical location yet
                    continue;
                }
                map_fs_range(w, *fsys, f.segs, u64(e, "physical"), u64(e, "length"),
                             u64(e, "logical"), fms.size(), pieces);
            }
        }
        fms.push_back(std::move(m));
    }
    std::vector<bool> mapped(fms.size());
    for (const auto& p : pieces) {
        mapped[p.file] = true;
    }
    for (std::size_t i = 0; i < fms.size(); ++i) {
        FileModel& fm = fms[i];
        if (mapped[i] || !fm.on_dm || !fm.encrypted || !fm.predictable || !fm.f->written ||
            !fm.f->have_info || fm.f->ic) {
            continue;
        }
        auto placed = place_by_log(w, fm, i);
        fm.placed_by_log = !placed.empty();
        pieces.insert(pieces.end(), placed.begin(), placed.end());
    }
    out.only_lblk = !w.pols.empty();
    for (const auto& p : w.pols) {
        out.only_lblk = out.only_lblk && (p.flags & 0x18) != 0;
    }
    for (const auto& mk : w.mks) {
        if (mk.hw_wrapped) {
            if (mk.key.empty()) {
                // A generated (or foreign) wrapped key: its inline key is not derivable, so
                // I/O outside reported extents is judged for consistency only.
                out.only_lblk = false;
            } else { // one key for both IV_INO_LBLK policies: no inode check
                derivable.emplace(
                    models::key_fingerprint(models::hw_wrapped::inline_encryption_key(mk.key)),
                    std::pair{"the inline encryption key of hardware-wrapped master key " +
                                  mk.identifier.substr(0, 8),
                              fc::Policy::v2_default});
            }
            continue;
        }
        for (const auto& fsys : w.fss) {
            if (mk.v1 || fsys.mnt != mk.mnt || fsys.uuid.size() != 16) { // v1: per-file keys only
                continue;
            }
            const std::string id = mk.identifier.substr(0, 8);
            derivable.emplace(models::key_fingerprint(fc::iv_ino_lblk_64_key(mk.key, fsys.uuid)),
                              std::pair{"the IV_INO_LBLK_64 key of master key " + id,
                                        fc::Policy::iv_ino_lblk_64});
            derivable.emplace(models::key_fingerprint(fc::iv_ino_lblk_32_key(mk.key, fsys.uuid)),
                              std::pair{"the IV_INO_LBLK_32 key of master key " + id,
                                        fc::Policy::iv_ino_lblk_32});
        }
    }
    for (const auto& fm : fms) {
        if (fm.predictable) {
            derivable.emplace(fm.key_fp, std::pair{"the key of " + fm.path, fm.policy});
        }
        if (fm.encrypted && fm.policy == fc::Policy::iv_ino_lblk_64 && fm.f->have_ino) {
            out.lblk64_inos.insert(fm.f->ino);
        }
    }
    for (std::size_t i = 0; i < pieces.size(); ++i) {
        const Piece& p = pieces[i];
        fms[p.file].bytes_on_ctrl[p.ctrl.empty() ? p.disk : p.ctrl] += p.len;
        ++fms[p.file].npieces;
        if (!p.ctrl.empty()) {
            out.pieces_by_lu[{p.ctrl, p.lun}].push_back(i);
        }
    }
    return out;
}

} // namespace icemu::checker::detail
