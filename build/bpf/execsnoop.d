build/bpf/execsnoop.bpf.o: bpf/execsnoop.bpf.c bpf/include/snoop.bpf.h \
  bpf/vmlinux.h

bpf/include/snoop.bpf.h:

bpf/vmlinux.h:
