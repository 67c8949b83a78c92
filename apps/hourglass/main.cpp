#include "cli/run.h"

int main(int argc, char** argv) {
  return hg::cli::run(argc, argv);
}
