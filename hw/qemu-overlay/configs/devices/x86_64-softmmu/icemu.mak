# icemu's minimal x86_64 device set (configure --with-devices-x86_64=icemu).
# With --without-default-devices only these and what they select are built.
CONFIG_Q35=y
# libqos' x86 graph (QEMU's own ufs-test) only knows the "pc" machine
CONFIG_I440FX=y
CONFIG_UFS_PCI=y
# scsi-bus/scsi-hd: UFS_PCI selects SCSI (patch 0001) and VIRTIO_SCSI does; named here
# because a developer's command line may put scsi-hd disks on either
CONFIG_SCSI=y
CONFIG_VIRTIO_PCI=y
CONFIG_VIRTIO_BLK=y
CONFIG_VIRTIO_SERIAL=y
CONFIG_SDHCI_PCI=y
# A developer's own command line and virtme-ng (vng): 9p and virtiofs roots, virtconsole,
# an entropy source, user-mode networking, its watchdog, virtio-scsi disks, a balloon.
CONFIG_VIRTIO_9P=y
CONFIG_VHOST_USER_FS=y
CONFIG_VIRTIO_RNG=y
CONFIG_VIRTIO_NET=y
CONFIG_VIRTIO_SCSI=y
CONFIG_VIRTIO_BALLOON=y
CONFIG_WDT_IB6300ESB=y
