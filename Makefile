# snooptools: `make help` lists the targets.
.DELETE_ON_ERROR:
.SUFFIXES:
SHELL := /bin/bash

CLANG     ?= clang
BPFTOOL   ?= bpftool
PYTHON    ?= $(if $(wildcard .venv/bin/python),.venv/bin/python,python3)
OUT       := build
ARCH      := x86
PREFIX    ?= /usr
TOOLSDIR  ?= $(PREFIX)/share/tools
MANDIR    ?= $(PREFIX)/share/man/man8
DESTDIR   ?=
KERNEL    ?= 6.1
VM_KERNELS := 5.10 6.1 6.12

# snoop runs the tools beside it: a command with no object of its own
COMMANDS  := snoop
TOOLS     := $(filter-out $(COMMANDS),$(sort $(notdir $(wildcard tools/*snoop))))
OBJS      := $(patsubst bpf/%.bpf.c,$(OUT)/bpf/%.bpf.o,$(wildcard bpf/*.bpf.c))
MANS      := $(patsubst %,man/man8/%.8,$(TOOLS) $(COMMANDS))
LIBSRC    := $(shell find lib/snooptools -name '*.py')

BPF_CFLAGS := -g -O2 -Wall -Werror -target bpf -D__TARGET_ARCH_$(ARCH) \
	-Ibpf -Ibpf/include -MMD -MP

ifeq ($(V),1)
Q :=
msg = @true
else
Q := @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

.PHONY: all bpf man pyc test test-unit test-live bench install uninstall clean vmlinux deps help
all: bpf man pyc ## build every BPF object and man page, and compile the library (default)

# Every start imports the library: from bytecode made here, not compiled
# again by each run (which costs ~10 ms where bytecode is never written,
# as under PYTHONDONTWRITEBYTECODE).
pyc: $(OUT)/pyc.stamp

# snoop imports the drivers it runs (they have no .py suffix: compileall
# passes them by), from tools/__pycache__ where their bytecode is made here
COMPILE_TOOLS = $(PYTHON) -c 'import importlib.util as u, py_compile, sys; \
	[py_compile.compile(f, u.cache_from_source(f), doraise=True) for f in sys.argv[1:]]'

$(OUT)/pyc.stamp: $(LIBSRC) $(addprefix tools/,$(TOOLS)) | $(OUT)/bpf
	$(call msg,PYC,lib tools)
	$(Q)$(PYTHON) -m compileall -q lib && $(COMPILE_TOOLS) $(addprefix tools/,$(TOOLS)) && touch $@

bpf: $(OBJS) ## build the BPF objects into build/bpf

$(OUT)/bpf/%.bpf.o: bpf/%.bpf.c bpf/vmlinux.h | $(OUT)/bpf
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -MF $(OUT)/bpf/$*.d -c $< -o $@

$(OUT)/bpf:
	$(Q)mkdir -p $@

-include $(wildcard $(OUT)/bpf/*.d)

man: $(MANS) ## generate man/man8/<tool>.8 from each tool's parser

# after the object: some help texts name what it holds (mountsnoop's calls)
man/man8/%.8: tools/% man/include/%.man man/common.man scripts/mkman $(LIBSRC) $(OUT)/bpf/%.bpf.o
	$(call msg,MAN,$@)
	$(Q)mkdir -p man/man8
	$(Q)$(PYTHON) scripts/mkman $* > $@.tmp && mv $@.tmp $@

# snoop's help names the tools it can run
man/man8/snoop.8: tools/snoop man/include/snoop.man man/common.man scripts/mkman $(LIBSRC) \
		$(addprefix tools/,$(TOOLS))
	$(call msg,MAN,$@)
	$(Q)mkdir -p man/man8
	$(Q)$(PYTHON) scripts/mkman snoop > $@.tmp && mv $@.tmp $@

vmlinux: ## regenerate bpf/vmlinux.h from this kernel's BTF
	$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > bpf/vmlinux.h

deps: ## install build, run and test dependencies (Debian/Ubuntu, as root)
	./scripts/deps

test: all ## run the whole test suite (live tests need root)
	$(PYTHON) -m pytest $(PYTEST_ARGS)

test-unit: all ## only the unprivileged tests
	$(PYTHON) -m pytest -m 'not live' $(PYTEST_ARGS)

test-live: all ## only the live (root) tests
	$(PYTHON) -m pytest -m live $(PYTEST_ARGS)

.PHONY: test-vm kernels
test-vm: all ## the live tests in a VM booting KERNEL=5.10, 6.1 (default) or 6.12 (TESTS= pytest args)
	KERNEL=$(KERNEL) ./scripts/test-vm $(TESTS)

# What each tool chose on each kernel: this machine's from a run here, each
# VM leg's from its last run (make test-vm KERNEL=...), into README's table.
kernels: all ## README's table of kernels and tools: a run here and the VM legs' reports
	SNOOPTOOLS_CHOICES_REPORT=$(OUT)/choices $(PYTHON) -m pytest -p no:cacheprovider -q \
		tests/live/test_choices.py
	$(PYTHON) scripts/kernels --readme README.md $(OUT)/choices \
		$(foreach k,$(VM_KERNELS),$(OUT)/vm/$(k)/share/choices)

bench: bpf ## measure start-up, memory, overhead and lossless rate
	$(PYTHON) scripts/bench

# The installed tools' first line names the interpreter the library was
# compiled with (the venv's base: the system's python3 after make deps), as
# pip does for console scripts: not whatever python3 is first on PATH.
RUNPYTHON = $(shell $(PYTHON) -c 'import sys; print(sys._base_executable)')

install: all ## install tools, objects, library and man pages
	install -d $(DESTDIR)$(TOOLSDIR)/bpf $(DESTDIR)$(TOOLSDIR)/lib/snooptools $(DESTDIR)$(MANDIR)
	$(Q)python=$(RUNPYTHON) && for t in $(TOOLS) $(COMMANDS); do \
		sed "1s|.*|#!$$python|" tools/$$t > $(DESTDIR)$(TOOLSDIR)/$$t && \
		chmod 0755 $(DESTDIR)$(TOOLSDIR)/$$t || exit 1; done
	install -m 0644 $(OBJS) $(DESTDIR)$(TOOLSDIR)/bpf/
	install -m 0644 lib/snooptools/*.py $(DESTDIR)$(TOOLSDIR)/lib/snooptools/
	$(PYTHON) -m compileall -q -d $(TOOLSDIR)/lib $(DESTDIR)$(TOOLSDIR)/lib
	$(COMPILE_TOOLS) $(addprefix $(DESTDIR)$(TOOLSDIR)/,$(TOOLS))
	install -m 0644 $(MANS) $(DESTDIR)$(MANDIR)/

uninstall: ## remove what install put in place
	rm -f $(addprefix $(DESTDIR)$(TOOLSDIR)/,$(TOOLS) $(COMMANDS)) $(addprefix $(DESTDIR)$(MANDIR)/,$(notdir $(MANS)))
	rm -rf $(DESTDIR)$(TOOLSDIR)/bpf $(DESTDIR)$(TOOLSDIR)/lib/snooptools \
		$(DESTDIR)$(TOOLSDIR)/__pycache__
	-rmdir $(DESTDIR)$(TOOLSDIR)/lib $(DESTDIR)$(TOOLSDIR) 2>/dev/null

clean: ## remove build output
	rm -rf $(OUT) lib/snooptools/__pycache__

help: ## this list
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'
	@echo "  V=1 shows commands; PREFIX, DESTDIR, TOOLSDIR and MANDIR steer install."
