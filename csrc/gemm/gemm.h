// Placeholder: the gemm family is being written (see csrc/README.md).
#pragma once
