//! `RUN --mount=type=tmpfs` as BuildKit mounts it: `nosuid` only (moby/
//! buildkit solver/llbsolver/mounts/mount.go `tmpfsMount.Mount`), so a
//! script written there runs and a device node made there opens; `ro`
//! and `size=` (go-units sizes, in bytes) when asked.

use crate::support;

use support::kiln::Kiln;

/// The options field of `/proc/mounts` for `target`, as the RUN saw it,
/// without the ones this kernel adds on its own (`relatime`, `inode64`).
const OPTIONS_OF: &str = "grep \" $T tmpfs \" /proc/mounts | cut -d' ' -f4 \
    | tr , '\\n' | grep -v -e relatime -e inode64 | tr '\\n' ' '";

#[test]
fn run_tmpfs_mount_was_noexec_and_nodev() {
    let k = Kiln::with_busybox_image();
    let ctx = k.context(&[]);
    let dockerfile = format!(
        "FROM busybox
RUN --mount=type=tmpfs,target=/tmp \\
    printf '#!/bin/sh\\necho script ran\\n' > /tmp/s.sh && chmod +x /tmp/s.sh && /tmp/s.sh > /out \\
    && mknod /tmp/null c 1 3 && echo x > /tmp/null && echo device opened >> /out \\
    && T=/tmp && {OPTIONS_OF} >> /out
RUN --mount=type=tmpfs,target=/small,size=1.5m --mount=type=tmpfs,target=/frozen,ro \\
    (T=/small && {OPTIONS_OF} && echo && T=/frozen && {OPTIONS_OF}) > /sized \\
    && if touch /frozen/x 2>/dev/null; then echo writable >> /sized; fi
"
    );
    k.build_ok(&ctx, &dockerfile, "tmpfs:1", &[]);
    assert_eq!(
        k.sh("tmpfs:1", "cat /out"),
        "script ran\ndevice opened\nrw nosuid "
    );
    assert_eq!(
        k.sh("tmpfs:1", "cat /sized"),
        "rw nosuid size=1536k \nro nosuid "
    );
}
