"""What benchmark reports say about the machine they ran on."""
import platform


def cpu_name() -> str:
    """The CPU's model name (Linux's ``/proc/cpuinfo``), else what
    :mod:`platform` knows (e.g. ``'x86_64'``)."""
    try:
        with open('/proc/cpuinfo') as cpuinfo:
            for line in cpuinfo:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
