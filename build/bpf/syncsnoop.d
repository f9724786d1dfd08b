build/bpf/syncsnoop.bpf.o: bpf/syncsnoop.bpf.c bpf/include/fs.bpf.h \
  bpf/include/snoop.bpf.h bpf/vmlinux.h

bpf/include/fs.bpf.h:

bpf/include/snoop.bpf.h:

bpf/vmlinux.h:
