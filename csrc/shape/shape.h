// Placeholder: the shape family is being written (see csrc/README.md).
#pragma once
