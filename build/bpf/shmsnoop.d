build/bpf/shmsnoop.bpf.o: bpf/shmsnoop.bpf.c bpf/include/snoop.bpf.h \
  bpf/vmlinux.h

bpf/include/snoop.bpf.h:

bpf/vmlinux.h:
