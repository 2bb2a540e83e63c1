// Placeholder: the reduce family is being written (see csrc/README.md).
#pragma once
