"""The notebook kernel of a packet build: ipykernel, started as `python -P -m auditbook.report.packet.kernel
-f CONNECTION_FILE`, that dies with the process that started it (see lifeline). jupyter_client puts
kernels in a session of their own, out of reach of the build's process group, and ipykernel's own
parent poller only notices a dead parent after its start-up and up to a second later; this does not
wait. `-P`: the working folder (the packet being built) is not put on sys.path."""
import os


def main() -> None:
    from auditbook.report.packet.lifeline import die_with_parent
    die_with_parent(int(os.environ.get("JPY_PARENT_PID") or 0))  # set by jupyter_client: our launcher
    from auditbook.gc_tuning import collect_less
    collect_less()  # a kernel holds a run's findings and large frames: fewer walks over them
    from auditbook.history.shared_reads import share_in_this_process
    share_in_this_process()  # its notebooks read the same period of the same store
    from ipykernel import kernelapp
    kernelapp.launch_new_instance()


if __name__ == "__main__":
    main()
