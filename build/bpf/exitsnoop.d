build/bpf/exitsnoop.bpf.o: bpf/exitsnoop.bpf.c bpf/include/snoop.bpf.h \
  bpf/vmlinux.h

bpf/include/snoop.bpf.h:

bpf/vmlinux.h:
