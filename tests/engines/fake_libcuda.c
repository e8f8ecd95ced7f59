/* A stand-in for the CUDA driver library (libcuda.so.1): the six calls
 * engines/trt_rtx/devices.py makes, with the signatures and result codes of
 * the CUDA Driver API reference (cuda.h: CUresult is an int, CUdevice an int;
 * CUDA_SUCCESS 0, CUDA_ERROR_INVALID_VALUE 1, CUDA_ERROR_NOT_INITIALIZED 3,
 * CUDA_ERROR_NO_DEVICE 100, CUDA_ERROR_INVALID_DEVICE 101). The tests compile
 * it with the C compiler and load it through ctypes, as the real one is.
 *
 * What it shows is read from the environment when cuInit is called:
 *   FAKE_CUDA_INIT     the result cuInit returns (default 0);
 *   FAKE_CUDA_DEVICES  "8.9=NVIDIA L4;8.6=NVIDIA A10" (default: none).
 * Every other call before a successful cuInit returns CUDA_ERROR_NOT_INITIALIZED,
 * as the driver does.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEVICES 8

typedef int CUresult;
typedef int CUdevice;

static int initialized = 0;
static int count = 0;
static int majors[MAX_DEVICES], minors[MAX_DEVICES];
static char names[MAX_DEVICES][128];

CUresult cuInit(unsigned int flags) {
    const char *init = getenv("FAKE_CUDA_INIT");
    const char *listed = getenv("FAKE_CUDA_DEVICES");
    char copy[1024];
    if (flags != 0) return 1;
    if (init && atoi(init) != 0) return atoi(init);
    count = 0;
    if (listed) {
        strncpy(copy, listed, sizeof copy - 1);
        copy[sizeof copy - 1] = 0;
        for (char *entry = strtok(copy, ";"); entry && count < MAX_DEVICES;
             entry = strtok(NULL, ";")) {
            char *name = strchr(entry, '=');
            if (!name || sscanf(entry, "%d.%d", &majors[count], &minors[count]) != 2) return 1;
            snprintf(names[count], sizeof names[count], "%s", name + 1);
            count++;
        }
    }
    initialized = 1;
    return 0;
}

CUresult cuDeviceGetCount(int *out) {
    if (!initialized) return 3;
    *out = count;
    return 0;
}

CUresult cuDeviceGet(CUdevice *device, int ordinal) {
    if (!initialized) return 3;
    if (ordinal < 0 || ordinal >= count) return 101;
    *device = ordinal;
    return 0;
}

CUresult cuDeviceGetAttribute(int *value, int attribute, CUdevice device) {
    if (!initialized) return 3;
    if (device < 0 || device >= count) return 101;
    if (attribute == 75) *value = majors[device];
    else if (attribute == 76) *value = minors[device];
    else return 1;
    return 0;
}

CUresult cuDeviceGetName(char *name, int length, CUdevice device) {
    if (!initialized) return 3;
    if (device < 0 || device >= count) return 101;
    if (length < 1) return 1;
    snprintf(name, (size_t)length, "%s", names[device]);
    return 0;
}

CUresult cuGetErrorName(CUresult error, const char **text) {
    switch (error) {
    case 0: *text = "CUDA_SUCCESS"; return 0;
    case 1: *text = "CUDA_ERROR_INVALID_VALUE"; return 0;
    case 3: *text = "CUDA_ERROR_NOT_INITIALIZED"; return 0;
    case 100: *text = "CUDA_ERROR_NO_DEVICE"; return 0;
    case 101: *text = "CUDA_ERROR_INVALID_DEVICE"; return 0;
    default: *text = NULL; return 1;
    }
}
