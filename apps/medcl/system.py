"""What ``medcl info`` reports: versions, device, threads, CUDA."""

from __future__ import annotations

import os
import platform


def system_info() -> dict[str, str]:
    import torch

    from medcl.io.runs import library_versions

    info = {"platform": platform.platform(), "python": platform.python_version()}
    info.update({k: v for k, v in library_versions().items() if k != "python"})
    info["torch threads"] = str(torch.get_num_threads())
    info["cpu cores"] = str(os.cpu_count())
    cuda = torch.cuda.is_available()
    info["cuda available"] = str(cuda)
    if cuda:
        info["cuda version"] = str(torch.version.cuda)
        info["gpus"] = ", ".join(torch.cuda.get_device_name(i)
                                 for i in range(torch.cuda.device_count()))
    info["default device"] = "cuda" if cuda else "cpu"
    return info
