/* MPI_Allreduce (Float32 sum, in place) timed the way `megatron bench collectives` times its
 * backends, to measure what the Swift wrapper costs over Open MPI used directly.
 * Build and run: mpicc -O2 -o /tmp/mpi_allreduce scripts/bench/mpi_allreduce.c
 *                mpirun -np 2 --bind-to none /tmp/mpi_allreduce [MiB...]   (default 1 4 16 64) */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    double defaults[] = {1, 4, 16, 64};
    int count_sizes = argc > 1 ? argc - 1 : 4;
    const int iterations = 10;
    if (rank == 0) printf("backend   ranks  size_MiB  time_ms  algbw_GB/s  busbw_GB/s\n");
    for (int s = 0; s < count_sizes; s++) {
        double mebibytes = argc > 1 ? atof(argv[s + 1]) : defaults[s];
        int count = (int)(mebibytes * 262144);
        float *buffer = malloc((size_t)count * sizeof(float));
        for (int i = 0; i < count; i++) buffer[i] = (float)rank;
        for (int i = 0; i < 2; i++) MPI_Allreduce(MPI_IN_PLACE, buffer, count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        MPI_Barrier(MPI_COMM_WORLD);
        double start = MPI_Wtime();
        for (int i = 0; i < iterations; i++) MPI_Allreduce(MPI_IN_PLACE, buffer, count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        double elapsed = (MPI_Wtime() - start) / iterations, slowest;
        MPI_Allreduce(&elapsed, &slowest, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
        double algorithm = mebibytes * 1048576 / slowest / 1e9;
        if (rank == 0)
            printf("raw-mpi   %-6d %-9.1f %-8.3f %-11.2f %.2f\n", size, mebibytes, slowest * 1000, algorithm,
                   algorithm * 2 * (size - 1) / size);
        free(buffer);
    }
    MPI_Finalize();
    return 0;
}
