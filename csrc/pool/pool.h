// Placeholder: the pool family is being written (see csrc/README.md).
#pragma once
