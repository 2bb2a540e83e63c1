// Placeholder: the norm family is being written (see csrc/README.md).
#pragma once
