// device-mapper through its ioctls (no dmsetup in the initramfs). Every op names the dm
// device by "name"; create also makes /dev/mapper/<name> (there is no udev in the guest).
// A failing ioctl throws with errno; the reply's kmsg lines carry the kernel's reason
// (e.g. "device-mapper: table: ... more restrictive ...").
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <linux/dm-ioctl.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "ops.hpp"

namespace icemu::guest {
namespace {

constexpr std::size_t kBufSize = 64 * 1024;

struct DmBuf {
    alignas(8) std::uint8_t data[kBufSize];
    dm_ioctl* hdr() { return reinterpret_cast<dm_ioctl*>(data); }
};

class Control {
public:
    Control() {
        fd_ = ::open("/dev/mapper/control", O_RDWR | O_CLOEXEC);
        if (fd_ < 0) {
            // devtmpfs names it mapper/control; make sure it exists
            mkdir_p("/dev/mapper");
            if (::mknod("/dev/mapper/control", S_IFCHR | 0600, makedev(10, 236)) < 0 &&
                errno != EEXIST)
                throw_errno("mknod /dev/mapper/control");
            fd_ = ::open("/dev/mapper/control", O_RDWR | O_CLOEXEC);
            if (fd_ < 0)
                throw_errno("open /dev/mapper/control");
        }
    }
    ~Control() { ::close(fd_); }
    Control(const Control&) = delete;
    Control& operator=(const Control&) = delete;

    void call(unsigned long cmd, DmBuf& b, const std::string& what) {
        if (::ioctl(fd_, cmd, b.data) < 0)
            throw_errno(what);
    }

private:
    int fd_ = -1;
};

void init_hdr(DmBuf& b, const std::string& name, std::uint32_t flags = 0) {
    std::memset(b.data, 0, sizeof(dm_ioctl));
    dm_ioctl* h = b.hdr();
    h->version[0] = DM_VERSION_MAJOR;
    h->version[1] = 0;
    h->version[2] = 0;
    h->data_size = kBufSize;
    h->data_start = sizeof(dm_ioctl);
    h->flags = flags;
    if (name.size() >= DM_NAME_LEN)
        throw OpError(EINVAL, "dm name too long: " + name);
    std::strncpy(h->name, name.c_str(), DM_NAME_LEN - 1);
}

json dev_facts(const dm_ioctl* h) {
    auto dev = static_cast<dev_t>(h->dev);
    return {{"dev", std::to_string(major(dev)) + ":" + std::to_string(minor(dev))},
            {"open_count", h->open_count},
            {"event_nr", h->event_nr},
            {"active_present", (h->flags & DM_ACTIVE_PRESENT_FLAG) != 0},
            {"inactive_present", (h->flags & DM_INACTIVE_PRESENT_FLAG) != 0},
            {"suspended", (h->flags & DM_SUSPEND_FLAG) != 0}};
}

std::string mapper_path(const std::string& name) {
    return "/dev/mapper/" + name;
}

// A DM_* ioctl that names the device and carries no payload; returns the reply's facts.
json name_only(const json& req, unsigned long cmd, const std::string& what,
               std::uint32_t flags = 0) {
    std::string name = arg_str(req, "name");
    Control c;
    DmBuf b;
    init_hdr(b, name, flags);
    c.call(cmd, b, what + " " + name);
    return dev_facts(b.hdr());
}

} // namespace

// dm_create: name [, uuid]. Creates the device with no table and /dev/mapper/<name>.
json op_dm_create(const json& req) {
    std::string name = arg_str(req, "name");
    Control c;
    DmBuf b;
    init_hdr(b, name);
    std::string uuid = arg_str(req, "uuid", "");
    std::strncpy(b.hdr()->uuid, uuid.c_str(), DM_UUID_LEN - 1);
    c.call(DM_DEV_CREATE, b, "DM_DEV_CREATE " + name);
    json f = dev_facts(b.hdr());
    auto dev = static_cast<dev_t>(b.hdr()->dev);
    mkdir_p("/dev/mapper");
    ::unlink(mapper_path(name).c_str());
    if (::mknod(mapper_path(name).c_str(), S_IFBLK | 0600, dev) < 0)
        throw_errno("mknod " + mapper_path(name));
    f["path"] = mapper_path(name);
    f["sysname"] = "dm-" + std::to_string(minor(dev));
    return f;
}

// dm_load: name, table = [{"start":sectors,"len":sectors,"type":"linear","params":"..."}...]
// (DM_TABLE_LOAD into the inactive slot; dm_resume makes it live).
json op_dm_load(const json& req) {
    std::string name = arg_str(req, "name");
    auto it = req.find("table");
    if (it == req.end() || !it->is_array() || it->empty())
        throw OpError(EINVAL, "dm_load: 'table' must be a non-empty array");
    Control c;
    DmBuf b;
    init_hdr(b, name);
    std::size_t off = sizeof(dm_ioctl);
    std::uint32_t count = 0;
    dm_target_spec* prev = nullptr;
    std::size_t prev_off = 0;
    for (const auto& t : *it) {
        std::string type = arg_str(t, "type");
        std::string params = arg_str(t, "params", "");
        std::size_t need = sizeof(dm_target_spec) + params.size() + 1;
        need = (need + 7) & ~std::size_t{7};
        if (off + need > kBufSize)
            throw OpError(E2BIG, "dm_load: table too large");
        auto* spec = reinterpret_cast<dm_target_spec*>(b.data + off);
        std::memset(spec, 0, need);
        spec->sector_start = arg_u64(t, "start");
        spec->length = arg_u64(t, "len");
        if (type.size() >= DM_MAX_TYPE_NAME)
            throw OpError(EINVAL, "dm target type too long");
        std::strncpy(spec->target_type, type.c_str(), DM_MAX_TYPE_NAME - 1);
        std::memcpy(b.data + off + sizeof(dm_target_spec), params.c_str(), params.size() + 1);
        if (prev)
            prev->next = static_cast<std::uint32_t>(off - prev_off);
        prev = spec;
        prev_off = off;
        off += need;
        ++count;
    }
    b.hdr()->target_count = count;
    c.call(DM_TABLE_LOAD, b, "DM_TABLE_LOAD " + name);
    return dev_facts(b.hdr());
}

json op_dm_resume(const json& req) {
    return name_only(req, DM_DEV_SUSPEND, "DM_DEV_SUSPEND(resume)");
}

json op_dm_suspend(const json& req) {
    return name_only(req, DM_DEV_SUSPEND, "DM_DEV_SUSPEND", DM_SUSPEND_FLAG);
}

json op_dm_remove(const json& req) {
    name_only(req, DM_DEV_REMOVE, "DM_DEV_REMOVE");
    ::unlink(mapper_path(arg_str(req, "name")).c_str());
    return json::object();
}

json op_dm_clear(const json& req) {
    return name_only(req, DM_TABLE_CLEAR, "DM_TABLE_CLEAR");
}

// dm_message: name, message [, sector=0]. DM_TARGET_MSG (e.g. "create_thin 0" to a thin-pool);
// a target's reply text comes back as "output".
json op_dm_message(const json& req) {
    std::string name = arg_str(req, "name"), msg = arg_str(req, "message");
    if (sizeof(dm_ioctl) + sizeof(dm_target_msg) + msg.size() + 1 > kBufSize)
        throw OpError(EINVAL, "dm_message: message too long");
    Control c;
    DmBuf b;
    init_hdr(b, name);
    auto* tm = reinterpret_cast<dm_target_msg*>(b.data + sizeof(dm_ioctl));
    tm->sector = arg_u64(req, "sector", 0);
    std::memcpy(tm->message, msg.c_str(), msg.size() + 1);
    c.call(DM_TARGET_MSG, b, "DM_TARGET_MSG " + name + " '" + msg + "'");
    json out = json::object();
    if (b.hdr()->flags & DM_DATA_OUT_FLAG)
        out["output"] = std::string(reinterpret_cast<const char*>(b.data + b.hdr()->data_start));
    return out;
}

// dm_table: name [, inactive]. Returns the table as the kernel reports it.
json op_dm_table(const json& req) {
    std::string name = arg_str(req, "name");
    Control c;
    DmBuf b;
    std::uint32_t flags = DM_STATUS_TABLE_FLAG;
    if (arg_bool(req, "inactive", false))
        flags |= DM_QUERY_INACTIVE_TABLE_FLAG;
    init_hdr(b, name, flags);
    c.call(DM_TABLE_STATUS, b, "DM_TABLE_STATUS " + name);
    dm_ioctl* h = b.hdr();
    json table = json::array();
    std::size_t off = h->data_start;
    for (std::uint32_t i = 0; i < h->target_count && off + sizeof(dm_target_spec) <= kBufSize;
         ++i) {
        auto* spec = reinterpret_cast<dm_target_spec*>(b.data + off);
        const char* params = reinterpret_cast<const char*>(b.data + off + sizeof(dm_target_spec));
        table.push_back({{"start", spec->sector_start},
                         {"len", spec->length},
                         {"type", std::string(spec->target_type)},
                         {"params", std::string(params)}});
        // In DM_TABLE_STATUS replies "next" counts from data_start (in DM_TABLE_LOAD
        // requests it counts from the previous spec).
        off = h->data_start + spec->next;
    }
    json f = dev_facts(h);
    f["table"] = table;
    return f;
}

} // namespace icemu::guest
